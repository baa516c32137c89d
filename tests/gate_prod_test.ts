/**
 * The prod path through the built gate: sessions opened by one approval (via
 * the approval queue and `gcp-gate approve`), session tokens capped by the
 * session's life, revocation, denial, and what the audit log says about it.
 */
import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import { createGateClient } from "../shared/gate_client.ts";
import type { SessionResponse } from "../shared/protocol.ts";
import { assertNoSecrets, PROD_SA, run, type Stack, startStack } from "./_utils.ts";
import { FAKE_ENGINEER } from "./fakes/google.ts";

const CLOUD = "https://www.googleapis.com/auth/cloud-platform";

function auditPath(stack: Stack): string {
  return `${stack.home}/.local/state/gcp-gate/audit.log`;
}

function auditLines(stack: Stack): Record<string, unknown>[] {
  try {
    return Deno.readTextFileSync(auditPath(stack)).split("\n").filter((l) => l !== "").map((l) =>
      JSON.parse(l)
    );
  } catch {
    return [];
  }
}

async function waitFor<T>(what: string, f: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits for one queued approval and decides it with the real `gcp-gate approve|deny`. */
async function decideQueued(stack: Stack, verb: "approve" | "deny"): Promise<string> {
  let id: string | undefined;
  const end = Date.now() + 10_000;
  while (id === undefined && Date.now() < end) {
    const res = await run("gcp-gate", ["--config", stack.configPath, "pending"], {
      env: stack.clientEnv,
    });
    id = /^([0-9a-f]{8})\s/m.exec(res.stdout)?.[1];
    if (id === undefined) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(id, `no pending approval appeared\n${stack.logs()}`);
  const args = verb === "approve" ? ["approve", id, "--yes"] : ["deny", id];
  const res = await run("gcp-gate", ["--config", stack.configPath, ...args], {
    env: stack.clientEnv,
  });
  assert.equal(res.code, 0, `${verb} failed: ${res.stderr}`);
  return id;
}

Deno.test("gcp-gate: an approved session refreshes prod tokens capped by its life, until revoked", async () => {
  await using stack = await startStack({
    proxy: false,
    gateToml: `approval_methods = "queue"\nprod_service_account = "${PROD_SA}"`,
  });
  const gate = createGateClient({ socketPath: stack.socketPath, timeoutMs: 30_000 });
  try {
    const asking = gate.openSession({
      command: ["gcloud", "run", "deploy", "--access-token=ya29.a-secret-in-argv", "api"],
      reason: "deploy the api",
      project: "demo-project",
      scopes: [CLOUD],
      ttl_seconds: 600,
    });
    const approvalId = await decideQueued(stack, "approve");
    using lease = await asking;
    const s: SessionResponse = lease.session;
    assert.match(s.session_id, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(s.expires_in > 590 && s.expires_in <= 600);
    assert.equal(s.email, FAKE_ENGINEER);
    assert.deepEqual(s.scopes, [CLOUD]);
    assert.equal(s.project, "demo-project");

    const t = await gate.token({ session: s.session_id });
    const issued = stack.fake.issued().find((i) => i.token === t.access_token);
    assert.equal(issued?.email, PROD_SA, "prod tokens impersonate prod_service_account");
    const mint = stack.fake.requests.filter((r) => r.path.includes(encodeURIComponent(PROD_SA)));
    assert.equal(mint.length, 1);
    const lifetime = Number(/^(\d+)s$/.exec(JSON.parse(mint[0]!.body).lifetime)?.[1]);
    assert.ok(
      lifetime <= 600 && lifetime > 500,
      `token lifetime ${lifetime}s is capped by the session`,
    );
    assert.ok(t.expires_in <= 600);
    // A refresh within the session reuses the token; no new approval is asked.
    assert.equal((await gate.token({ session: s.session_id })).access_token, t.access_token);

    // Scopes beyond what was approved are refused.
    const wider = await gate.token({
      session: s.session_id,
      scopes: ["https://www.googleapis.com/auth/other"],
    }).catch((e) => e);
    assert.ok(wider instanceof GateError && wider.code === "forbidden", String(wider));

    assert.equal((await gate.getSession(s.session_id)).session_id, s.session_id);
    await gate.deleteSession(s.session_id);
    const after = await gate.token({ session: s.session_id }).catch((e) => e);
    assert.ok(after instanceof GateError && after.code === "session_not_found", String(after));
    const again = await gate.deleteSession(s.session_id).catch((e) => e);
    assert.ok(again instanceof GateError && again.status === 404);
    // A guessed id is refused the same way.
    const guess = await gate.getSession("A".repeat(43)).catch((e) => e);
    assert.ok(guess instanceof GateError && guess.code === "session_not_found");

    const audit = await waitFor("the revoked audit entry", () => {
      const lines = auditLines(stack);
      return lines.some((l) => l.result === "revoked") ? lines : undefined;
    });
    const granted = audit.find((l) => l.endpoint === "/session" && l.result === "granted");
    assert.ok(granted, JSON.stringify(audit));
    assert.equal(granted.email, FAKE_ENGINEER);
    assert.equal(granted.approval_id, approvalId);
    assert.equal(granted.session, s.session_id.slice(0, 8));
    assert.equal(granted.project, "demo-project");
    assert.ok(Array.isArray(granted.command));
    assert.ok(!JSON.stringify(granted.command).includes("a-secret-in-argv"), "argv is redacted");
    const revoked = audit.find((l) => l.result === "revoked")!;
    assert.equal(revoked.session, s.session_id.slice(0, 8));
    assert.ok(audit.some((l) => l.endpoint === "/token" && l.level === "prod"));
    const text = Deno.readTextFileSync(auditPath(stack));
    assert.ok(!text.includes(s.session_id), "the audit log never holds a whole session id");
    assertNoSecrets(text, stack.fake, "audit log");
    assert.equal(Deno.statSync(auditPath(stack)).mode! & 0o777, 0o600);
  } finally {
    gate.close();
  }
  assertNoSecrets(stack.logs(), stack.fake, "gate log");
});

Deno.test("gcp-gate: a denied prod request is a 403 and an audited denial", async () => {
  await using stack = await startStack({
    proxy: false,
    gateToml: `approval_methods = "queue"`,
  });
  const gate = createGateClient({ socketPath: stack.socketPath, timeoutMs: 30_000 });
  try {
    const asking = gate.openSession({ command: ["kubectl", "delete", "ns", "prod"] }).catch((
      e,
    ) => e);
    await decideQueued(stack, "deny");
    const err = await asking;
    assert.ok(err instanceof GateError, String(err));
    assert.equal(err.code, "denied");
    assert.equal(err.status, 403);
    const oneOff = gate.token({ scopes: [CLOUD] }).then(() => "dev ok");
    assert.equal(await oneOff, "dev ok", "dev tokens still flow");
    const audit = await waitFor("the denial", () => {
      const l = auditLines(stack).find((x) => x.result === "denied");
      return l;
    });
    assert.equal(audit.endpoint, "/session");
    assert.equal(audit.level, "prod");
    assert.deepEqual(audit.command, ["kubectl", "delete", "ns", "prod"]);
    assert.equal(stack.fake.count(/generateAccessToken$/), 1, "only the dev token was minted");
  } finally {
    gate.close();
  }
});

Deno.test("gcp-gate: a malformed prod request is refused before anyone is asked", async () => {
  await using stack = await startStack({ proxy: false, gateToml: `approval_methods = "queue"` });
  const gate = createGateClient({ socketPath: stack.socketPath });
  try {
    const bad: [unknown, RegExp][] = [
      [{ command: "rm -rf /" }, /command must be an array of strings/],
      [{ command: [1, 2] }, /command must be an array of strings/],
      [{ reason: "x".repeat(501) }, /reason: at most 500/],
      [{ ttl_seconds: -1 }, /ttl_seconds must be an integer/],
      [{ ttl_seconds: 1.5 }, /ttl_seconds must be an integer/],
      [{ scopes: ["not a scope"] }, /not a valid OAuth scope/],
      [{ project: "Bad Project!" }, /not a project id/],
      [{ surprise: 1 }, /unknown field "surprise"/],
    ];
    for (const [body, re] of bad) {
      // deno-lint-ignore no-explicit-any -- hostile bodies on purpose
      const err = await gate.openSession(body as any).catch((e) => e);
      assert.ok(err instanceof GateError, JSON.stringify(body));
      assert.equal(err.code, "bad_request", JSON.stringify(body));
      assert.match(err.message, re);
    }
    const pending = await run("gcp-gate", ["--config", stack.configPath, "pending"], {
      env: stack.clientEnv,
    });
    assert.match(pending.stdout, /No prod request is waiting/);
  } finally {
    gate.close();
  }
});

Deno.test("gcp-gate: GET /token?level=prod mints one prod token for its ttl after its own approval", async () => {
  await using stack = await startStack({
    proxy: false,
    gateToml: `approval_methods = "queue"\nprod_service_account = "${PROD_SA}"`,
  });
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: stack.socketPath } });
  try {
    const asking = fetch("http://gate.invalid/token?level=prod&ttl_seconds=300", {
      client,
      headers: { "x-gcp-gate-protocol": "1" },
    });
    await decideQueued(stack, "approve");
    const res = await asking;
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.ok(body.expires_in <= 300);
    const issued = stack.fake.issued().find((i) => i.token === body.access_token);
    assert.equal(issued?.email, PROD_SA);
    const line = await waitFor(
      "the prod token audit line",
      () => auditLines(stack).find((l) => l.endpoint === "/token" && l.level === "prod"),
    );
    assert.equal(line.result, "granted");
    assert.equal(line.ttl_seconds, 300);
  } finally {
    client.close();
  }
});
