import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import type { ApprovalDecision, ApprovalRequest } from "./approval/types.ts";
import type { AuditEntry } from "./audit.ts";
import { fakeProdState } from "./_prod_fakes.ts";
import { approvalRequest, approve, askedFields } from "./prod_approval.ts";

const signal = new AbortController().signal;
const PARTS = {
  project: "p",
  scopes: ["s1"],
  ttlSeconds: 900,
  reason: "why",
  command: ["deploy"],
  notes: [],
  code: "K7P-QX2",
};

Deno.test("approvalRequest() states the prod account and the life of its tokens", async () => {
  const { state } = fakeProdState({ prodTokenTtlSeconds: 7200 });
  const ask = await approvalRequest(state, "session", { parts: PARTS, signal });
  assert.equal(ask.id, "abcd1234");
  assert.equal(ask.email, "eng@example.com");
  assert.equal(ask.kind, "session");
  assert.equal(ask.serviceAccount, "prod@p.iam.gserviceaccount.com");
  // Capped at Google's default 1 h, whatever the config asks.
  assert.equal(ask.tokenTtlSeconds, 3600);
  assert.equal(ask.ttlSeconds, 900);
});

Deno.test("approvalRequest() with the engineer's own credentials states no token life", async () => {
  const { state } = fakeProdState({ prodServiceAccount: undefined });
  const ask = await approvalRequest(state, "token", { parts: PARTS, signal });
  assert.equal(ask.serviceAccount, undefined);
  assert.equal(ask.tokenTtlSeconds, undefined);
  assert.equal("grants" in ask, false);
});

const ASK: ApprovalRequest = {
  id: "abcd1234",
  email: "eng@example.com",
  kind: "session",
  ...PARTS,
  from: "vm-3 via ssh",
};

Deno.test("askedFields() names the caller's host only when it stated one", () => {
  assert.equal(askedFields(ASK).caller_host, "vm-3 via ssh");
  const { from: _, ...noFrom } = ASK;
  assert.equal("caller_host" in askedFields(noFrom), false);
});

Deno.test("approve() returns an approval and audits nothing", async () => {
  const { state, audit } = fakeProdState();
  const d = await approve(state, ASK, { endpoint: "/session", signal });
  assert.equal(d.approved, true);
  assert.deepEqual(audit.entries, []);
});

Deno.test("approve() audits a denial with the decision and throws denied", async () => {
  const { state, audit } = fakeProdState({
    approver: {
      decide: () => Promise.resolve({ approved: false, method: "dialog", detail: "denied\nby me" }),
    },
  });
  await assert.rejects(
    approve(state, ASK, { endpoint: "/session", signal }),
    (e) => e instanceof GateError && e.code === "denied",
  );
  assert.equal(audit.entries.length, 1);
  assert.equal(audit.entries[0]!.result, "denied");
  assert.equal(audit.entries[0]!.approval_id, "abcd1234");
  assert.ok(!audit.entries[0]!.approval!.includes("\n"), "the detail is sanitised");
});

Deno.test("approve() audits a rate-limited ask as rate_limited, with its code", async () => {
  const { state, audit } = fakeProdState({
    approver: {
      decide: () => Promise.reject(new GateError("rate_limited", "too many approvals")),
    },
  });
  await assert.rejects(approve(state, ASK, { endpoint: "/token", signal }), GateError);
  const e = audit.entries[0]!;
  assert.equal(e.result, "rate_limited");
  assert.equal(e.code, "rate_limited");
  assert.equal(e.endpoint, "/token");
});

Deno.test("approve() refuses an approval that arrives after the client left (a decision: not folded)", async () => {
  const { state, audit } = fakeProdState();
  const gone = new AbortController();
  gone.abort();
  await assert.rejects(
    approve(state, ASK, { endpoint: "/session", signal: gone.signal }),
    (e) => e instanceof GateError && e.code === "denied",
  );
  assert.equal(audit.entries[0]!.result, "denied");
});

/** Approves or not, as the caller goes away at that very moment; returns the audited line. */
async function decidedAsCallerLeft(
  decision: ApprovalDecision,
): Promise<AuditEntry> {
  const { state, audit } = fakeProdState();
  const gone = new AbortController();
  const leaving = {
    ...state,
    deps: {
      ...state.deps,
      approver: {
        decide: () => {
          gone.abort();
          return Promise.resolve(decision);
        },
      },
    },
  };
  await assert.rejects(
    approve(leaving, ASK, { endpoint: "/session", signal: gone.signal }),
    (e) => e instanceof GateError && e.code === "denied",
  );
  return audit.entries[0]!;
}

Deno.test("approve(): a request whose caller left before anyone decided is withdrawn (foldable)", async () => {
  const line = await decidedAsCallerLeft({
    approved: false,
    method: "queue",
    detail: "withdrawn: the client went away",
  });
  assert.equal(line.result, "withdrawn");
});

Deno.test("approve(): a human's approval that lands as the caller leaves stays a decision (never folded)", async () => {
  const line = await decidedAsCallerLeft({ approved: true, method: "dialog", detail: "approved" });
  assert.equal(line.result, "denied");
  assert.match(String(line.approval), /^dialog: approved/);
});
