import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import { createLogger } from "../shared/log.ts";
import type { LeaseEvent, SessionResponse } from "../shared/protocol.ts";
import { LEASE_LOST, leasedSession } from "./lease.ts";
import type { ProdService } from "./prod.ts";
import type { ParsedProdRequest } from "./prod_request.ts";

const REQ: ParsedProdRequest = {
  command: ["true"],
  notes: [],
  reason: undefined,
  project: "p",
  scopes: ["https://www.googleapis.com/auth/cloud-platform"],
  ttlSeconds: 600,
  code: undefined,
};
const SESSION: SessionResponse = {
  session_id: "S".repeat(43),
  expires_in: 600,
  project: "p",
  scopes: REQ.scopes as string[],
  email: "eng@example.com",
  service_account: "prod@p.iam.gserviceaccount.com",
  token_ttl_seconds: 600,
};

/** A prod service whose approval the test settles, recording revocations. */
function fakeProd() {
  let settle!: (r: SessionResponse | Error) => void;
  const state = {
    revoked: [] as [string, string][],
    open: true,
    approvalSignal: undefined as AbortSignal | undefined,
    decide: (r: SessionResponse | Error) => settle(r),
  };
  const unused = (): never => {
    throw new Error("unused");
  };
  const prod: ProdService = {
    openSession: (_req, signal) => {
      state.approvalSignal = signal;
      return new Promise((resolve, reject) => {
        settle = (r) => r instanceof Error ? reject(r) : resolve(r);
        signal.addEventListener("abort", () => reject(signal.reason));
      });
    },
    isOpen: () => state.open,
    revokeSession: (id, reason) => {
      if (!state.open) throw new GateError("session_not_found", "gone");
      state.open = false;
      state.revoked.push([id, reason]);
    },
    describeSession: unused,
    recordRefusal: unused,
    sessionToken: unused,
    oneOffToken: unused,
    reset: unused,
    close: unused,
  };
  return { prod, state };
}

const log = createLogger({ write: () => {} });

/** Reads lease lines; empty strings are keep-alives. */
function lines(res: Response) {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  return {
    reader,
    async next(): Promise<LeaseEvent | "" | undefined> {
      for (;;) {
        const nl = buf.indexOf("\n");
        if (nl >= 0) {
          const l = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          return l === "" ? "" : JSON.parse(l) as LeaseEvent;
        }
        const { done, value } = await reader.read();
        if (done) return undefined;
        buf += value;
      }
    },
  };
}

Deno.test("leasedSession() answers pending at once, then the session; closing it revokes (lease lost)", async () => {
  const { prod, state } = fakeProd();
  const res = leasedSession(REQ, { prod, log, keepAliveMs: 60_000 });
  assert.equal(res.headers.get("content-type"), "application/x-ndjson");
  const l = lines(res);
  assert.deepEqual(await l.next(), { event: "pending" });
  state.decide(SESSION);
  assert.deepEqual(await l.next(), { event: "session", ...SESSION });
  await l.reader.cancel();
  assert.deepEqual(state.revoked, [[SESSION.session_id, LEASE_LOST]]);
});

Deno.test("leasedSession() withdraws a pending approval when the lease closes (no lease, no approval)", async () => {
  const { prod, state } = fakeProd();
  const l = lines(leasedSession(REQ, { prod, log, keepAliveMs: 60_000 }));
  await l.next();
  await l.reader.cancel();
  assert.equal(state.approvalSignal?.aborted, true);
  assert.deepEqual(state.revoked, []);
});

Deno.test("leasedSession() sends a refusal as an error event and ends", async () => {
  const { prod, state } = fakeProd();
  const l = lines(leasedSession(REQ, { prod, log, keepAliveMs: 60_000 }));
  await l.next();
  state.decide(new GateError("rate_limited", "slow down", { retryAfterSeconds: 7 }));
  assert.deepEqual(await l.next(), {
    event: "error",
    error: "slow down",
    code: "rate_limited",
    retry_after_seconds: 7,
  });
  assert.equal(await l.next(), undefined);
});

Deno.test("leasedSession() keeps the lease alive, and ends it when the session is revoked elsewhere", async () => {
  const { prod, state } = fakeProd();
  const l = lines(leasedSession(REQ, { prod, log, keepAliveMs: 20 }));
  await l.next();
  assert.equal(await l.next(), "", "a keep-alive while the human decides");
  state.decide(SESSION);
  let e = await l.next();
  while (e === "") e = await l.next();
  assert.equal((e as LeaseEvent).event, "session");
  state.open = false; // DELETE /session, or expiry
  e = await l.next();
  while (e === "") e = await l.next();
  assert.deepEqual(e, { event: "ended", reason: "revoked or expired" });
  assert.equal(await l.next(), undefined);
});

Deno.test("leasedSession() revokes open sessions when the gate stops", async () => {
  const { prod, state } = fakeProd();
  const stopping = new AbortController();
  const l = lines(leasedSession(REQ, { prod, log, keepAliveMs: 60_000, signal: stopping.signal }));
  await l.next();
  state.decide(SESSION);
  await l.next();
  stopping.abort();
  assert.deepEqual(await l.next(), { event: "ended", reason: "the gate is stopping" });
  assert.equal(await l.next(), undefined);
  assert.deepEqual(state.revoked, [[SESSION.session_id, "gate stopping"]]);
});
