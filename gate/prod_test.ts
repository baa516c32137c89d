import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import type { ApprovalRequest, Approver } from "./approval/types.ts";
import type { GoogleApi } from "./google_api.ts";
import { FAKE_IDENTITY as identity, recordingAudit, stubGoogleApi } from "./_prod_fakes.ts";
import { createProdService, MAX_REFUSALS_PER_SESSION, type ProdDeps } from "./prod.ts";
import type { ParsedProdRequest } from "./prod_request.ts";
import { createSessionStore } from "./sessions.ts";

const PROD_SA = "prod@p.iam.gserviceaccount.com";

function api(minted: { sa: string; lifetime: number }[]): GoogleApi {
  return stubGoogleApi({
    generateAccessToken: (_src, sa, _scopes, lifetime) => {
      minted.push({ sa, lifetime });
      return Promise.resolve({ token: `prod-${minted.length}`, expiresAt: now + lifetime * 1000 });
    },
  });
}

let now = 1_000_000;

function setup(
  approver: Approver,
  prodSa: string | null = PROD_SA,
  maxSessions?: number,
  prodTokenTtlSeconds = 600,
) {
  const minted: { sa: string; lifetime: number }[] = [];
  const audit = recordingAudit();
  const asked: ApprovalRequest[] = [];
  const deps: ProdDeps = {
    approver: {
      decide: (req, signal) => {
        asked.push(req);
        return approver.decide(req, signal);
      },
    },
    api: api(minted),
    source: () => Promise.resolve({ token: "engineer-adc", expiresAt: now + 3600_000 }),
    identity,
    sessions: createSessionStore({ now: () => now, ...(maxSessions ? { maxSessions } : {}) }),
    audit,
    prodServiceAccount: prodSa ?? undefined,
    prodTokenTtlSeconds,
    now: () => now,
    approvalId: () => "abcd1234",
  };
  return { prod: createProdService(deps), minted, audit, asked };
}

const APPROVE: Approver = {
  decide: () => Promise.resolve({ approved: true, method: "queue", detail: "approved via queue" }),
};
const REQ: ParsedProdRequest = {
  command: ["deploy", "--x"],
  notes: [],
  reason: "ship it",
  project: "p",
  scopes: ["https://www.googleapis.com/auth/cloud-platform"],
  ttlSeconds: 600,
  code: "K7P-QX2",
};
const signal = new AbortController().signal;

Deno.test("an approved session shows the human everything and audits the grant", async () => {
  const { prod, audit, asked } = setup(APPROVE);
  const s = await prod.openSession(REQ, signal);
  assert.equal(s.email, "eng@example.com");
  assert.equal(s.expires_in, 600);
  assert.deepEqual(asked[0], {
    id: "abcd1234",
    email: "eng@example.com",
    kind: "session",
    project: "p",
    scopes: REQ.scopes,
    ttlSeconds: 600,
    reason: "ship it",
    command: ["deploy", "--x"],
    notes: [],
    code: "K7P-QX2",
    serviceAccount: PROD_SA,
    tokenTtlSeconds: 600,
  });
  const e = audit.entries[0]!;
  assert.equal(e.result, "granted");
  assert.equal(e.session, s.session_id.slice(0, 8));
  assert.equal(e.approval_id, "abcd1234");
  assert.ok(!JSON.stringify(audit.entries).includes(s.session_id));
});

Deno.test("session tokens impersonate prod_service_account and never outlive the session", async () => {
  const { prod, minted, audit } = setup(APPROVE);
  const s = await prod.openSession(REQ, signal);
  now += 100_000;
  const t = await prod.sessionToken(s.session_id, { scopes: undefined, ttlSeconds: 3600 }, signal);
  assert.equal(t.token, "prod-1");
  assert.deepEqual(minted, [{ sa: PROD_SA, lifetime: 500 }]);
  await prod.sessionToken(s.session_id, { scopes: undefined, ttlSeconds: 3600 }, signal);
  assert.equal(minted.length, 1, "reused while fresh");
  assert.deepEqual(audit.hits, ["/token?session"]);
  prod.revokeSession(s.session_id, "DELETE /session");
  await assert.rejects(
    prod.sessionToken(s.session_id, { scopes: undefined, ttlSeconds: undefined }, signal),
    (e) => e instanceof GateError && e.code === "session_not_found",
  );
  assert.equal(audit.entries.at(-1)?.result, "revoked");
});

Deno.test("session tokens live prod_token_ttl_seconds, never more than asked, 1 h or the session", async () => {
  const long = { ...REQ, ttlSeconds: 28_800 };
  const { prod, minted, asked } = setup(APPROVE);
  const s = await prod.openSession(long, signal);
  await prod.sessionToken(s.session_id, { scopes: undefined, ttlSeconds: undefined }, signal);
  await prod.sessionToken(s.session_id, { scopes: undefined, ttlSeconds: 3600 }, signal);
  await prod.sessionToken(s.session_id, { scopes: undefined, ttlSeconds: 120 }, signal);
  assert.deepEqual(minted.map((m) => m.lifetime), [600, 600, 120]);
  assert.equal(asked[0]?.tokenTtlSeconds, 600, "the human is told the real token life");

  const capped = setup(APPROVE, PROD_SA, undefined, 7200);
  const c = await capped.prod.openSession(long, signal);
  await capped.prod.sessionToken(c.session_id, { scopes: undefined, ttlSeconds: 7200 }, signal);
  assert.deepEqual(capped.minted.map((m) => m.lifetime), [3600], "Google's default cap");
});

Deno.test("a one-off prod token is asked and minted for at most prod_token_ttl_seconds", async () => {
  const { prod, minted, asked } = setup(APPROVE);
  await prod.oneOffToken({ scopes: REQ.scopes, ttlSeconds: 3600 }, signal);
  assert.equal(asked[0]?.ttlSeconds, 600);
  assert.deepEqual(minted.map((m) => m.lifetime), [600]);
});

Deno.test("without prod_service_account a session hands out the engineer's own token", async () => {
  const { prod, minted } = setup(APPROVE, null);
  const s = await prod.openSession(REQ, signal);
  const t = await prod.sessionToken(
    s.session_id,
    { scopes: undefined, ttlSeconds: undefined },
    signal,
  );
  assert.equal(t.token, "engineer-adc");
  assert.equal(minted.length, 0);
});

Deno.test("without prod_service_account the approver is told it grants the engineer's own credentials", async () => {
  const { prod, asked } = setup(APPROVE, null);
  await prod.openSession(REQ, signal);
  await prod.oneOffToken({ scopes: REQ.scopes, ttlSeconds: 600 }, signal);
  assert.equal(asked.length, 2);
  for (const a of asked) assert.equal(a.serviceAccount, undefined);
  const { prod: limited, asked: asked2 } = setup(APPROVE);
  await limited.oneOffToken({ scopes: REQ.scopes, ttlSeconds: 600 }, signal);
  assert.equal(asked2[0]?.serviceAccount, PROD_SA);
  assert.equal(asked2[0]?.code, undefined, "a one-off token has no with-prod code");
});

Deno.test("denials, rate limits and approver failures are audited and refused", async () => {
  const denied = setup({
    decide: () =>
      Promise.resolve({ approved: false, method: "dialog", detail: "denied in dialog" }),
  });
  await assert.rejects(
    denied.prod.openSession(REQ, signal),
    (e) => e instanceof GateError && e.code === "denied" && /denied in dialog/.test(e.message),
  );
  assert.equal(denied.audit.entries[0]?.result, "denied");
  assert.equal(denied.audit.entries[0]?.approval, "dialog: denied in dialog");

  const limited = setup({
    decide: () =>
      Promise.reject(new GateError("rate_limited", "slow down", { retryAfterSeconds: 5 })),
  });
  await assert.rejects(
    limited.prod.openSession(REQ, signal),
    (e) => e instanceof GateError && e.code === "rate_limited" && e.status === 429,
  );
  assert.equal(limited.audit.entries[0]?.result, "rate_limited");

  const broken = setup({
    decide: () => Promise.reject(new GateError("approval_unavailable", "no method")),
  });
  await assert.rejects(broken.prod.openSession(REQ, signal), /no method/);
  assert.equal(broken.audit.entries[0]?.result, "error");
  assert.equal(broken.audit.entries[0]?.code, "approval_unavailable");
});

Deno.test("an approved session refused for too many open sessions is audited as rate_limited", async () => {
  const { prod, audit } = setup(APPROVE, PROD_SA, 1);
  await prod.openSession(REQ, signal);
  await assert.rejects(
    prod.openSession(REQ, signal),
    (e) => e instanceof GateError && e.code === "rate_limited" && e.status === 429,
  );
  const last = audit.entries.at(-1)!;
  assert.equal(last.result, "rate_limited");
  assert.equal(last.code, "rate_limited");
  assert.equal(last.approval, "queue: approved via queue");
  assert.equal(audit.entries.length, 2);
});

Deno.test("a session refuses scopes it was not approved for", async () => {
  const { prod } = setup(APPROVE);
  const s = await prod.openSession(REQ, signal);
  await assert.rejects(
    prod.sessionToken(s.session_id, { scopes: ["https://x/other"], ttlSeconds: undefined }, signal),
    (e) => e instanceof GateError && e.code === "forbidden",
  );
});

Deno.test("a one-off prod token needs its own approval and is minted for its ttl", async () => {
  const { prod, minted, asked } = setup(APPROVE);
  const t = await prod.oneOffToken({ scopes: ["s"], ttlSeconds: 300 }, signal);
  assert.equal(t.token, "prod-1");
  assert.equal(asked[0]?.kind, "token");
  assert.deepEqual(minted, [{ sa: PROD_SA, lifetime: 300 }]);
});

Deno.test("refusals reported by with-prod are audited per session, bounded, and need a live session", async () => {
  const { prod, audit } = setup(APPROVE);
  const s = await prod.openSession(REQ, signal);
  for (let i = 0; i < MAX_REFUSALS_PER_SESSION + 10; i++) {
    prod.recordRefusal(s.session_id, { pid: 4242, command: "curl", reason: "not a descendant" });
  }
  const lines = audit.entries.filter((e) => e.result === "refused");
  // Every reported refusal up to the cap, then one line saying the rest is not logged.
  assert.equal(lines.length, MAX_REFUSALS_PER_SESSION + 1);
  assert.deepEqual(
    { pid: lines[0]!.caller_pid, command: lines[0]!.caller_command, refusal: lines[0]!.refusal },
    { pid: 4242, command: "curl", refusal: "not a descendant" },
  );
  assert.equal(lines[0]!.session, s.session_id.slice(0, 8));
  assert.match(lines.at(-1)!.refusal ?? "", /further ones are not logged/);
  prod.revokeSession(s.session_id, "DELETE /session");
  assert.throws(
    () => prod.recordRefusal(s.session_id, { pid: 1, command: null, reason: "x" }),
    (err: unknown) => err instanceof GateError && err.code === "session_not_found",
  );
});
