import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import { fakeProdState } from "./_prod_fakes.ts";
import type { ParsedProdRequest } from "./prod_request.ts";
import { checkReason, openSession, recordRefusal, revokeSession } from "./prod_session.ts";
import { MAX_REFUSALS_PER_SESSION } from "./prod_state.ts";

const signal = new AbortController().signal;
const REQ: ParsedProdRequest = {
  command: ["deploy"],
  notes: [],
  reason: undefined,
  project: "p",
  scopes: ["s1"],
  ttlSeconds: 600,
  code: "K7P-QX2",
};

Deno.test("checkReason() refuses a reasonless request only under require_reason", () => {
  assert.doesNotThrow(() => checkReason(fakeProdState().state, REQ));
  const { state } = fakeProdState({ requireReason: true });
  assert.throws(
    () => checkReason(state, REQ),
    (e) => e instanceof GateError && e.code === "bad_request",
  );
  assert.doesNotThrow(() => checkReason(state, { ...REQ, reason: "why" }));
});

Deno.test("openSession() audits an approval the session store then refuses", async () => {
  const { state, audit } = fakeProdState({
    sessions: {
      create: () => {
        throw new GateError("rate_limited", "too many open sessions");
      },
      find: () => undefined,
      revoke: () => undefined,
      size: 0,
    },
  });
  await assert.rejects(openSession(state, REQ, { signal }), GateError);
  assert.equal(audit.entries.length, 1);
  assert.equal(audit.entries[0]!.result, "rate_limited");
  assert.equal(audit.entries[0]!.approval, "queue: approved via queue");
});

Deno.test("revokeSession() audits once, drops the session's tokens; a second revoke is session_not_found", async () => {
  const { state, audit } = fakeProdState();
  const s = await openSession(state, REQ, { signal });
  state.cache.set(`${s.session_id.slice(0, 8)}|s1|-`, { token: "t", expiresAt: 1, issuedAt: 0 });
  revokeSession(state, s.session_id, "lease lost");
  assert.equal(state.cache.size, 0);
  assert.equal(audit.entries.at(-1)!.result, "revoked");
  assert.equal(audit.entries.at(-1)!.reason, "lease lost");
  assert.throws(
    () => revokeSession(state, s.session_id, "again"),
    (e) => e instanceof GateError && e.code === "session_not_found",
  );
});

Deno.test("recordRefusal() audits a bounded number of lines, then one that says so", async () => {
  const { state, audit } = fakeProdState();
  const s = await openSession(state, REQ, { signal });
  const before = audit.entries.length;
  for (let i = 0; i < MAX_REFUSALS_PER_SESSION + 5; i++) {
    recordRefusal(state, s.session_id, { pid: 7, command: "curl", reason: "not a descendant" });
  }
  const lines = audit.entries.slice(before);
  assert.equal(lines.length, MAX_REFUSALS_PER_SESSION + 1);
  assert.match(lines.at(-1)!.refusal!, /further ones are not logged/);
});
