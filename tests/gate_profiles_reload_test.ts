/**
 * Reloading a profiles gate through the built launcher: `gcp-gate reload`
 * and SIGHUP stop removed profiles (their sessions revoked and audited),
 * start profiles again, apply new limits; a bad config changes nothing; a
 * socket the launcher did not grant at start is refused with the fix; a
 * denial's cooldown outlives a reload that changes the profile's limits.
 */
import assert from "node:assert/strict";
import { GateError, isGateError } from "../shared/errors.ts";
import { createGateClient } from "../shared/gate_client.ts";
import { nextPending, startProfilesGate, type TestProfile } from "./_profiles.ts";

const CLOUD = "https://www.googleapis.com/auth/cloud-platform";

function exists(path: string): boolean {
  try {
    return Deno.lstatSync(path).isSocket === true;
  } catch {
    return false;
  }
}

async function eventually(what: string, f: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("gcp-gate reload: removes a profile (revoking its sessions), adds it back, keeps the others serving", async () => {
  const all: TestProfile[] = [{ name: "a" }, { name: "b" }, {
    name: "c",
    toml: `approval_methods = "queue"`,
  }];
  await using g = await startProfilesGate(all);
  const a = createGateClient({ socketPath: g.socket("a") });
  const c = createGateClient({ socketPath: g.socket("c"), timeoutMs: 30_000 });
  const before = (await a.token()).access_token;
  const asking = c.openSession({ scopes: [CLOUD], ttl_seconds: 600 }).then((l) => l.session);
  const { id } = await nextPending(g);
  assert.equal((await g.cli("approve", id, "--yes")).code, 0);
  const session = await asking;

  g.writeConfig(all.slice(0, 2));
  const removed = await g.cli("reload");
  assert.equal(removed.code, 0, removed.stderr);
  assert.match(removed.stdout, /stopped c/);
  assert.ok(!exists(g.socket("c")), "the removed profile's socket is gone");
  assert.equal((await a.token()).access_token, before, "a kept serving, from its cache");
  await eventually(
    "the revocation is audited",
    () =>
      g.auditLines().some((l) =>
        l.result === "revoked" && l.profile === "c" && l.session === session.session_id.slice(0, 8)
      ),
  );
  const s1 = JSON.parse((await g.cli("status", "--json")).stdout);
  assert.deepEqual(s1.profiles.map((p: { name: string }) => p.name), ["a", "b"]);

  // Back again, through SIGHUP this time: a fresh profile, the old session stays revoked.
  g.writeConfig(all);
  g.gate.kill("SIGHUP");
  await g.gate.waitFor(/config reloaded: started \[c\]/);
  const c2 = createGateClient({ socketPath: g.socket("c") });
  await c2.health();
  const gone = await c2.getSession(session.session_id).catch((e) => e);
  assert.ok(gone instanceof GateError && gone.code === "session_not_found", String(gone));
});

Deno.test("gcp-gate reload: changed limits apply; a bad config or an ungranted socket changes nothing", async () => {
  await using g = await startProfilesGate([{ name: "a", toml: `max_token_ttl_seconds = 3600` }]);
  const a = createGateClient({ socketPath: g.socket("a") });
  await a.token({ ttlSeconds: 3000 });

  g.writeConfig([{ name: "a", toml: `max_token_ttl_seconds = 600` }]);
  const changed = await g.cli("reload");
  assert.equal(changed.code, 0, changed.stderr);
  assert.match(changed.stdout, /updated a/);
  const capped = await a.token({ ttlSeconds: 3000 }).catch((e) => e);
  assert.ok(capped instanceof GateError && capped.code === "bad_request", String(capped));

  Deno.writeTextFileSync(g.configPath, "[profiles.a\nsocket_path = 1\n");
  const bad = await g.cli("reload");
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /line 1/, "the error says where");
  assert.ok((await a.token({ ttlSeconds: 600 })).access_token, "a keeps serving");

  g.writeConfig([{ name: "a" }, { name: "b" }]);
  const ungranted = await g.cli("reload");
  assert.notEqual(ungranted.code, 0);
  assert.match(ungranted.stderr, /profile b: its socket .* was not granted when the gate started/);
  assert.ok(!exists(g.socket("b")));
  assert.ok((await a.token({ ttlSeconds: 600 })).access_token, "a keeps serving");
  assert.match((await g.cli("status")).stdout, /profile a: listening/);
});

Deno.test("gcp-gate reload: a denied profile stays cooled down under its new limits; the other profile is not", async () => {
  const queue = `approval_methods = "queue"`;
  await using g = await startProfilesGate([
    { name: "a", toml: `${queue}\ndenial_cooldown_seconds = 600` },
    { name: "b", toml: queue },
  ]);
  const ask = (name: string) =>
    createGateClient({ socketPath: g.socket(name), timeoutMs: 30_000 })
      .openSession({ scopes: [CLOUD], ttl_seconds: 600 }).then((l) => l.session, (e) => e);
  const asked = ask("a");
  const { id } = await nextPending(g);
  assert.equal((await g.cli("deny", id)).code, 0);
  const denied = await asked;
  assert.ok(isGateError(denied, "denied"), String(denied));

  // The user is talked into a reload with a shorter cooldown and a new per-minute cap.
  g.writeConfig([
    { name: "a", toml: `${queue}\ndenial_cooldown_seconds = 5\nmax_approvals_per_minute = 3` },
    { name: "b", toml: queue },
  ]);
  const reloaded = await g.cli("reload");
  assert.equal(reloaded.code, 0, reloaded.stderr);
  assert.match(reloaded.stdout, /updated a/);
  const cooled = await ask("a");
  assert.ok(isGateError(cooled, "rate_limited"), String(cooled));
  assert.equal(cooled.status, 429);
  assert.match(
    cooled.message,
    /denied; new requests are refused for 600 s .* retry in (59\d|600) s/,
  );
  assert.ok((cooled.retryAfterSeconds ?? 0) > 500, `Retry-After ${cooled.retryAfterSeconds}`);
  assert.match((await g.cli("pending")).stdout, /No prod request is waiting/, "no one was asked");
  assert.ok(
    g.auditLines().some((l) => l.profile === "a" && l.result === "rate_limited"),
    "the refusal is audited under a",
  );

  // Profile b's limiter is its own: its request reaches the queue.
  const other = ask("b");
  const next = await nextPending(g);
  assert.match(next.line, /\[profile b\]/);
  assert.equal((await g.cli("approve", next.id, "--yes")).code, 0);
  assert.ok(!((await other) instanceof Error), String(await other));
});
