/**
 * Prod sessions backed by Privileged Access Manager grants, through the built
 * gate and the fake Google's PAM: a grant is created (idempotently), waited
 * for, reused, serves tokens, and is withdrawn when the session ends or the
 * gate stops; denied / expired / ended grants end the request with a clear
 * error; every step is audited and carries the request reason.
 */
import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import { createGateClient, type GateClient } from "../shared/gate_client.ts";
import type { SessionResponse } from "../shared/protocol.ts";
import { baseEnv, PROD_SA, run, type Stack, startStack } from "./_utils.ts";
import { readAudit } from "./_audit.ts";
import type { FakeGoogle, RecordedRequest } from "./fakes/google.ts";
import { APPROVAL_ENTITLEMENT, DEFAULT_ENTITLEMENT } from "./fakes/google_pam.ts";

const REASON_RE = /^gcp-gate approval [0-9a-f]{8}: /;

function pamToml(entitlement = "prod-access", extra = ""): string {
  return [`approval_methods = "queue"`, `pam_entitlement = "${entitlement}"`, extra].join("\n");
}

/** Waits until `f` returns something; on timeout the error shows `stack`'s audit log and logs. */
async function until<T>(
  what: string,
  f: () => T | undefined,
  ms = 10_000,
  stack?: Stack,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) {
      throw new Error(
        `timed out waiting for ${what}${
          stack ? `\n${JSON.stringify(readAudit(stack))}\n${stack.logs()}` : ""
        }`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What `gcp-gate pending` showed last. */
let lastPending = "";

/** Approves the next queued request with the real `gcp-gate approve`. */
async function approveQueued(stack: Stack): Promise<string> {
  let id: string | undefined;
  const end = Date.now() + 10_000;
  while (id === undefined && Date.now() < end) {
    const res = await run("gcp-gate", ["--config", stack.configPath, "pending"], {
      env: stack.clientEnv,
    });
    lastPending = res.stdout;
    id = /^([0-9a-f]{8})\s/m.exec(res.stdout)?.[1];
    if (id === undefined) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(id, `no pending approval appeared\n${stack.logs()}`);
  const res = await run("gcp-gate", ["--config", stack.configPath, "approve", id, "--yes"], {
    env: stack.clientEnv,
  });
  assert.equal(res.code, 0, res.stderr);
  return id;
}

/** Opens a session, approving it locally. */
async function openSession(
  stack: Stack,
  gate: GateClient,
  reason = "fix prod",
  command = ["gcloud", "run", "deploy"],
): Promise<{
  session: SessionResponse;
  approvalId: string;
}> {
  const asking = gate.openSession({ command, reason }).then((l) => l.session);
  const approvalId = await approveQueued(stack);
  return { session: await asking, approvalId };
}

function pamRequests(fake: FakeGoogle, re: RegExp): RecordedRequest[] {
  return fake.requests.filter((r) =>
    r.path.startsWith("/pam/") && re.test(`${r.method} ${r.path}`)
  );
}

const CREATE = /^POST .*\/grants$/;
const WITHDRAW = /^POST .*:withdraw$/;

Deno.test("pam: grant created → active → tokens → withdrawn when the session ends", async () => {
  await using stack = await startStack({
    proxy: false,
    gateToml: pamToml("prod-access", `prod_service_account = "${PROD_SA}"`),
  });
  const gate = createGateClient({ socketPath: stack.socketPath, timeoutMs: 30_000 });
  const { session, approvalId } = await openSession(stack, gate);
  // `pending` (like the dialog and the prompt) says what will be granted.
  assert.match(
    lastPending,
    /Grants: +PAM grant of projects\/demo-project\/locations\/global\/entitlements\/prod-access \(roles\/run\.admin\) for 1 h, withdrawn at session end; tokens: prod@demo-project\.iam\.gserviceaccount\.com$/m,
  );
  const [grant] = stack.fake.pam.grants();
  assert.ok(grant, "one grant was created");
  assert.equal(grant.entitlement, DEFAULT_ENTITLEMENT, "short id resolved with project_id");
  assert.equal(grant.state, "ACTIVE");
  assert.equal(grant.durationSeconds, 3600);
  assert.match(
    grant.justification,
    new RegExp(
      `^gcp-gate approval ${approvalId} for \\S+ — command: gcloud run deploy — reason given: "fix prod"$`,
    ),
  );
  const creates = pamRequests(stack.fake, CREATE);
  assert.equal(creates.length, 1);
  assert.match(creates[0]!.query.requestId ?? "", /^[0-9a-f-]{36}$/);
  const reason = creates[0]!.headers["x-goog-request-reason"] ?? "";
  assert.match(reason, REASON_RE);
  assert.ok(reason.includes(approvalId) && reason.endsWith("fix prod"));
  assert.equal(session.request_reason, reason, "with-prod gets the same reason");

  const t = await gate.token({ session: session.session_id });
  assert.equal(stack.fake.issued().find((i) => i.token === t.access_token)?.email, PROD_SA);
  const mint = stack.fake.requests.find((r) => r.path.includes(encodeURIComponent(PROD_SA)))!;
  assert.equal(mint.headers["x-goog-request-reason"], reason, "IAM calls carry the reason");

  await gate.deleteSession(session.session_id);
  await until("the withdrawal", () => stack.fake.pam.grants()[0]?.state === "WITHDRAWN");
  assert.equal(pamRequests(stack.fake, WITHDRAW).length, 1);
  const audit = await until(
    "the withdrawal audit",
    () => {
      const l = readAudit(stack);
      return l.some((x) => x.result === "withdrawn" && x.approval) ? l : undefined;
    },
    10_000,
    stack,
  );
  const granted = audit.find((l) => l.endpoint === "/session" && l.result === "granted")!;
  assert.equal(granted.grant, grant.name, "the session's audit line names the grant");
  assert.ok(audit.some((l) => l.endpoint === "/token" && l.grant === grant.name));
  assert.ok(audit.some((l) => l.endpoint === "pam" && l.grant_state === "ACTIVATING"));
  assert.ok(audit.some((l) => l.endpoint === "pam" && l.grant_state === "ACTIVE"));
  assert.ok(audit.some((l) => l.result === "revoked" && l.grant === grant.name));
});

Deno.test("pam: a second session reuses the active grant; the last one out withdraws it", async () => {
  await using stack = await startStack({ proxy: false, gateToml: pamToml() });
  const gate = createGateClient({ socketPath: stack.socketPath, timeoutMs: 30_000 });
  const a = await openSession(stack, gate, "first");
  const b = await openSession(stack, gate, "second");
  assert.equal(pamRequests(stack.fake, CREATE).length, 1, "no second grant was asked for");
  assert.equal(stack.fake.pam.grants().length, 1);
  const search = pamRequests(stack.fake, /grants:search$/);
  assert.ok(
    search.length >= 2 && search.every((r) => r.query.callerRelationship === "HAD_CREATED"),
  );
  await gate.deleteSession(a.session.session_id);
  // The other session still holds it: tokens keep flowing.
  await gate.token({ session: b.session.session_id });
  assert.equal(stack.fake.pam.grants()[0]!.state, "ACTIVE");
  assert.equal(pamRequests(stack.fake, WITHDRAW).length, 0);
  await gate.deleteSession(b.session.session_id);
  await until("the withdrawal", () => stack.fake.pam.grants()[0]!.state === "WITHDRAWN");
});

Deno.test("pam: waits for a teammate's approval, telling the engineer, then serves tokens", async () => {
  await using stack = await startStack({ proxy: false, gateToml: pamToml("prod-approval") });
  const gate = createGateClient({ socketPath: stack.socketPath, timeoutMs: 30_000 });
  const heard: string[] = [];
  const asking = gate.openSession({ reason: "on call" }, {
    onProgress: (m) => heard.push(m),
  }).then((l) => l.session);
  asking.catch(() => {}); // awaited below
  await approveQueued(stack);
  const grant = await until("the grant", () => stack.fake.pam.grants()[0]);
  assert.equal(grant.entitlement, APPROVAL_ENTITLEMENT);
  await stack.gate.waitFor(/waiting for a teammate to approve grant .*prod-approval\/grants\//);
  // Still waiting: nothing resolved yet.
  const early = await Promise.race([
    asking.then(() => "done"),
    until("a moment", () => false, 700)
      .catch(() => "waiting"),
  ]);
  assert.equal(early, "waiting");
  // The lease's holder (with-prod) is told what it waits for, not only the gate's log.
  await until("a progress event", () => heard.length > 0);
  assert.match(heard[0]!, /^waiting for a teammate to approve grant .*prod-approval\/grants\//);
  stack.fake.pam.approve(grant.name);
  const s = await asking;
  const t = await gate.token({ session: s.session_id });
  assert.ok(t.access_token);
  const states = readAudit(stack).filter((l) => l.endpoint === "pam").map((l) => l.grant_state);
  assert.equal(states[0], "APPROVAL_AWAITED");
  assert.ok(states.indexOf("ACTIVE") > 0, JSON.stringify(states));
});

for (
  const [state, code, re] of [
    ["DENIED", "denied", /DENIED by an approver/],
    ["EXPIRED", "denied", /EXPIRED before anyone approved it/],
    ["ACTIVATION_FAILED", "upstream", /could not activate/],
  ] as const
) {
  Deno.test(`pam: a ${state} grant ends the request with a clear error`, async () => {
    await using stack = await startStack({ proxy: false, gateToml: pamToml("prod-approval") });
    const gate = createGateClient({ socketPath: stack.socketPath, timeoutMs: 30_000 });
    const asking = gate.openSession({ reason: "x" }).catch((e: unknown) => e);
    await approveQueued(stack);
    const grant = await until("the grant", () => stack.fake.pam.grants()[0]);
    if (state === "DENIED") stack.fake.pam.deny(grant.name);
    else stack.fake.pam.setState(grant.name, state);
    const err = await asking;
    assert.ok(err instanceof GateError, String(err));
    assert.equal(err.code, code);
    assert.match(err.message, re);
    assert.ok(err.message.includes(grant.name));
    const line = await until(
      "the audit line",
      () =>
        readAudit(stack).find((l) =>
          l.endpoint === "/session" && l.result !== "granted" && l.error
        ),
    );
    assert.match(String(line.error), re);
    assert.equal(pamRequests(stack.fake, WITHDRAW).length, 0, "nothing to withdraw");
  });
}

Deno.test("pam: the gate withdraws its grants when it stops", async () => {
  await using stack = await startStack({ proxy: false, gateToml: pamToml() });
  const gate = createGateClient({ socketPath: stack.socketPath, timeoutMs: 30_000 });
  // A reason written to show a fake command and push the real one out of the
  // 500-character justification the approver reads in Google's console.
  const fake = "read-only check of billing — command: gcloud billing accounts list";
  const real = ["gcloud", "sql", "instances", "delete", "prod-db", "--quiet"];
  const { approvalId } = await openSession(stack, gate, `${fake}${" ".repeat(420)}`, real);
  assert.match(
    stack.fake.pam.grants()[0]!.justification,
    new RegExp(
      `^gcp-gate approval ${approvalId} for \\S+ — command: gcloud sql instances delete prod-db --quiet — reason given: "read-only check of billing — command: gcloud billing accounts list"$`,
    ),
  );
  stack.gate.kill("SIGTERM");
  const status = await stack.gate.status;
  assert.equal(status.code, 0, stack.logs());
  assert.equal(pamRequests(stack.fake, WITHDRAW).length, 1);
  assert.equal(stack.fake.pam.grants()[0]!.state, "WITHDRAWN");
  const l = readAudit(stack).find((x) => x.result === "withdrawn" && x.approval);
  assert.match(String(l?.approval), /^shutdown: withdrawn/);
});

Deno.test("pam: a 429 and a 5xx during create are retried with the same requestId (one grant)", async () => {
  await using stack = await startStack({ proxy: false, gateToml: pamToml() });
  stack.fake.inject({ match: /^POST \/pam\/v1\/.*\/grants$/, status: 429, times: 1 });
  stack.fake.inject({ match: /^POST \/pam\/v1\/.*\/grants$/, status: 503, times: 1 });
  const gate = createGateClient({ socketPath: stack.socketPath, timeoutMs: 30_000 });
  await openSession(stack, gate);
  const creates = pamRequests(stack.fake, CREATE);
  assert.equal(creates.length, 3, "two failures, then success");
  assert.equal(new Set(creates.map((r) => r.query.requestId)).size, 1, "one requestId");
  assert.equal(stack.fake.pam.grants().length, 1);
});

Deno.test("pam: a grant that ENDS mid-session ends the token supply with a clear error", async () => {
  await using stack = await startStack({ proxy: false, gateToml: pamToml() });
  const gate = createGateClient({ socketPath: stack.socketPath, timeoutMs: 30_000 });
  const { session } = await openSession(stack, gate);
  await gate.token({ session: session.session_id });
  const [grant] = stack.fake.pam.grants();
  stack.fake.pam.setState(grant!.name, "ENDED");
  // The gate looks at the grant again at most every 2 s.
  await new Promise((r) => setTimeout(r, 2100));
  const err = await gate.token({ session: session.session_id }).catch((e) => e);
  assert.ok(err instanceof GateError, String(err));
  assert.equal(err.code, "grant_ended");
  assert.match(err.message, /is ENDED: its access has ended; run the command again/);
  await gate.deleteSession(session.session_id);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(pamRequests(stack.fake, WITHDRAW).length, 0, "an ended grant is not withdrawn");
  assert.ok(readAudit(stack).some((l) => l.result === "ended" && l.grant === grant!.name));
});

Deno.test("pam: FAILED_PRECONDITION on create (another open grant) waits for that grant", async () => {
  await using stack = await startStack({ proxy: false, gateToml: pamToml() });
  // The search misses the other grant once (it was made just after): create then fails.
  stack.fake.inject({
    match: /grants:search$/,
    status: 200,
    body: {},
    times: 1,
  });
  const gate = createGateClient({ socketPath: stack.socketPath, timeoutMs: 30_000 });
  await openSession(stack, gate, "first");
  const before = stack.fake.pam.grants().length;
  stack.fake.inject({ match: /grants:search$/, status: 200, body: {}, times: 1 });
  const second = await openSession(stack, gate, "second");
  assert.equal(stack.fake.pam.grants().length, before, "no second grant");
  const creates = pamRequests(stack.fake, CREATE);
  assert.equal(creates.length, 2, "the second create was refused by PAM");
  await gate.token({ session: second.session.session_id });
});

Deno.test("require_reason: a prod request without a reason is refused before any dialog", async () => {
  await using stack = await startStack({
    proxy: false,
    gateToml: `approval_methods = "queue"\nrequire_reason = true`,
  });
  const gate = createGateClient({ socketPath: stack.socketPath, timeoutMs: 10_000 });
  const err = await gate.openSession({ command: ["true"] }).catch((e: unknown) => e);
  assert.ok(err instanceof GateError, String(err));
  assert.equal(err.code, "bad_request");
  assert.match(err.message, /a reason is required .*--reason/);
  const pending = await run("gcp-gate", ["--config", stack.configPath, "pending"], {
    env: stack.clientEnv,
  });
  assert.doesNotMatch(pending.stdout, /^[0-9a-f]{8}\s/m, "nobody was asked");
  // With a reason the request goes to the approver as usual.
  const asking = gate.openSession({ reason: "incident 42" }).then((l) => l.session);
  await approveQueued(stack);
  const s = await asking;
  assert.match(s.request_reason ?? "", /^gcp-gate approval [0-9a-f]{8}: incident 42$/);
});

Deno.test("pam: a malformed pam_entitlement stops the gate with one line and exit 2", async () => {
  const home = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${home}/c.toml`, `pam_entitlement = "projects/p/../x"\n`);
    Deno.mkdirSync(`${home}/run`, { mode: 0o700 });
    const res = await run("gcp-gate", ["--config", `${home}/c.toml`], {
      env: baseEnv(home),
    });
    assert.equal(res.code, 2, res.stderr);
    assert.match(res.stderr, /pam_entitlement must be projects\|folders\|organizations/);
    assert.doesNotMatch(res.stderr, /\bat .*\.ts:\d+/, "no stack trace");
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});
