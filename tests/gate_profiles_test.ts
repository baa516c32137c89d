/**
 * Profiles through the built gate: each socket is its own identity (service
 * account, caches, sessions, approval limits), one admin socket decides for
 * all of them, and `gcp-gate status` lists each without a token in sight.
 */
import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import { createGateClient } from "../shared/gate_client.ts";
import { devSa, nextPending, startProfilesGate } from "./_profiles.ts";
import { PROD_SA } from "./_utils.ts";

const CLOUD = "https://www.googleapis.com/auth/cloud-platform";

function mintsFor(fake: { requests: { path: string }[] }, sa: string): number {
  return fake.requests.filter((r) =>
    r.path.includes(`${encodeURIComponent(sa)}:generateAccessToken`) ||
    r.path.includes(`${sa}:generateAccessToken`)
  ).length;
}

Deno.test("gcp-gate profiles: three sockets, three service accounts, no token crosses sockets", async () => {
  await using g = await startProfilesGate([{ name: "alpha" }, { name: "beta" }, {
    name: "gamma",
    toml: `project_id = "gamma-project"`,
  }]);
  const tokens = new Map<string, string>();
  for (const name of ["alpha", "beta", "gamma"]) {
    const client = createGateClient({ socketPath: g.socket(name) });
    const t = await client.token();
    tokens.set(name, t.access_token);
    const issued = g.fake.issued().find((i) => i.token === t.access_token);
    assert.equal(issued?.email, devSa(name), `profile ${name} mints for its own account`);
    // A second ask is a cache hit of this profile: no new upstream call.
    assert.equal((await client.token()).access_token, t.access_token);
  }
  for (const name of ["alpha", "beta", "gamma"]) {
    assert.equal(mintsFor(g.fake, devSa(name)), 1, `one mint for ${name}, seen by the fake`);
  }
  assert.equal(new Set(tokens.values()).size, 3);
  const status = await g.cli("status", "--json");
  assert.equal(status.code, 0, status.stderr);
  const s = JSON.parse(status.stdout);
  assert.deepEqual(s.profiles.map((p: { name: string }) => p.name), ["alpha", "beta", "gamma"]);
  const gamma = s.profiles[2];
  assert.equal(gamma.listening, true);
  assert.equal(gamma.socket_path, g.socket("gamma"));
  assert.equal(gamma.project, "gamma-project");
  assert.equal(gamma.service_account, devSa("gamma"));
  assert.equal(gamma.dev_tokens.length, 1);
  assert.ok(gamma.dev_tokens[0].expires_in > 3000);
  for (const t of tokens.values()) assert.ok(!status.stdout.includes(t), "status shows no token");
  const text = await g.cli("status");
  assert.match(text.stdout, /profile beta: listening on .*\/run\/beta\/gate\.sock/);
  // doctor checks every profile's socket (the top-level one is not served).
  const doctor = await g.cli("doctor", "--json");
  const running = JSON.parse(doctor.stdout).checks.filter((c: { id: string }) =>
    c.id === "gate-running"
  );
  assert.deepEqual(running.map((c: { status: string }) => c.status), ["PASS", "PASS", "PASS"]);
  assert.match(running[1].message, /\/run\/beta\/gate\.sock/);
  // Dev decisions in the audit log name their profile.
  await new Promise((r) => setTimeout(r, 1500));
  const granted = g.auditLines().filter((l) => l.level === "dev" && l.result === "granted");
  assert.deepEqual(granted.map((l) => l.profile).sort(), ["alpha", "beta", "gamma"]);
});

Deno.test("gcp-gate profiles: an approval in one profile opens no session in the other", async () => {
  const prod = `approval_methods = "queue"\nprod_service_account = "${PROD_SA}"`;
  await using g = await startProfilesGate([{ name: "web", toml: prod }, {
    name: "api",
    toml: prod,
  }]);
  const web = createGateClient({ socketPath: g.socket("web"), timeoutMs: 30_000 });
  const api = createGateClient({ socketPath: g.socket("api"), timeoutMs: 30_000 });
  const asking = web.openSession({ project: "demo-project", scopes: [CLOUD], ttl_seconds: 600 })
    .then((l) => l.session);
  const { id, line } = await nextPending(g);
  assert.match(line, /\[profile web\]/, "pending names the profile");
  const ok = await g.cli("approve", id, "--yes");
  assert.equal(ok.code, 0, ok.stderr);
  const session = await asking;
  // The session exists on web's socket only.
  assert.equal((await web.getSession(session.session_id)).session_id, session.session_id);
  const other = await api.getSession(session.session_id).catch((e) => e);
  assert.ok(other instanceof GateError && other.code === "session_not_found", String(other));
  const tok = await api.token({ session: session.session_id }).catch((e) => e);
  assert.ok(tok instanceof GateError && tok.code === "session_not_found", String(tok));
  const s = JSON.parse((await g.cli("status", "--json")).stdout);
  const [pw, pa] = s.profiles;
  assert.equal(pw.sessions.length, 1);
  assert.equal(pw.sessions[0].id_prefix, session.session_id.slice(0, 8));
  assert.ok(!JSON.stringify(s).includes(session.session_id), "status shows only the id prefix");
  assert.equal(pa.sessions.length, 0);
  await new Promise((r) => setTimeout(r, 1500));
  const grant = g.auditLines().find((l) => l.endpoint === "/session" && l.result === "granted");
  assert.equal(grant?.profile, "web");
});

Deno.test("gcp-gate profiles: a denial cools down its own profile only", async () => {
  const prod = `approval_methods = "queue"\ndenial_cooldown_seconds = 600`;
  await using g = await startProfilesGate([{ name: "one", toml: prod }, {
    name: "two",
    toml: prod,
  }]);
  const one = createGateClient({ socketPath: g.socket("one"), timeoutMs: 30_000 });
  const two = createGateClient({ socketPath: g.socket("two"), timeoutMs: 30_000 });
  const first = one.openSession({ scopes: [CLOUD] }).then((l) => l.session).catch((e: unknown) =>
    e
  );
  const denied = await nextPending(g);
  assert.match(denied.line, /\[profile one\]/);
  assert.equal((await g.cli("deny", denied.id)).code, 0);
  assert.ok((await first) instanceof GateError);
  // Profile one is cooling down…
  const again = await one.openSession({ scopes: [CLOUD] }).then((l) => l.session).catch((
    e: unknown,
  ) => e);
  assert.ok(again instanceof GateError && again.code === "rate_limited", String(again));
  // …while profile two still reaches the human.
  const asking = two.openSession({ scopes: [CLOUD] }).then((l) => l.session).catch((e: unknown) =>
    e
  );
  const queued = await nextPending(g);
  assert.match(queued.line, /\[profile two\]/);
  assert.equal((await g.cli("deny", queued.id)).code, 0);
  const r = await asking;
  assert.ok(r instanceof GateError && r.code === "denied", String(r));
});
