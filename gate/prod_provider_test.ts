/** gate/prod.ts with a prod access provider (the PAM seam) and require_reason. */
import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import type { ApprovalRequest } from "./approval/types.ts";
import type { GoogleApi } from "./google_api.ts";
import type { IdentityService } from "./identity.ts";
import type { ProdAccessContext, ProdAccessProvider, ProdTokenAsk } from "./pam/provider.ts";
import { createProdService } from "./prod.ts";
import type { ParsedProdRequest } from "./prod_request.ts";
import { createSessionStore, type SessionStore } from "./sessions.ts";
import { recordingAudit, stubGoogleApi } from "./_prod_fakes.ts";

const unused = (): Promise<never> => Promise.reject(new Error("unused"));
const api: GoogleApi = stubGoogleApi();
const identity: IdentityService = {
  email: () => Promise.resolve("eng@example.com"),
  projectNumber: unused,
  idToken: unused,
  reset: () => {},
};
const REQ: ParsedProdRequest = {
  command: ["deploy"],
  notes: [],
  reason: "ship it",
  project: "p",
  scopes: ["https://www.googleapis.com/auth/cloud-platform"],
  ttlSeconds: 600,
  code: "K7P-QX2",
};
const signal = new AbortController().signal;

function fakeProvider(fail?: GateError) {
  const calls: string[] = [];
  const contexts: ProdAccessContext[] = [];
  const asks: ProdTokenAsk[] = [];
  const provider: ProdAccessProvider = {
    maxSessionSeconds: 300,
    describe: () => Promise.resolve("a grant of E (roles: roles/x) for 1 h"),
    acquire: (ctx) => {
      contexts.push(ctx);
      calls.push("acquire");
      return fail ? Promise.reject(fail) : Promise.resolve({ label: "E/grants/g1" });
    },
    token: (_h, ask) => {
      asks.push(ask);
      return Promise.resolve({ token: "granted-token", expiresAt: Date.now() + 60_000 });
    },
    release: (h, why) => {
      calls.push(`release ${h.label} ${why}`);
      return Promise.resolve();
    },
    close: () => {
      calls.push("close");
      return Promise.resolve();
    },
  };
  return { provider, calls, contexts, asks };
}

function setup(o: { provider?: ProdAccessProvider; requireReason?: boolean }) {
  const audit = recordingAudit();
  const entries = audit.entries;
  const asked: ApprovalRequest[] = [];
  const sessions: SessionStore = createSessionStore();
  const prod = createProdService({
    approver: {
      decide: (req) => {
        asked.push(req);
        return Promise.resolve({ approved: true, method: "queue", detail: "ok" });
      },
    },
    api,
    source: () => Promise.resolve({ token: "adc", expiresAt: Date.now() + 3600_000 }),
    identity,
    sessions,
    audit,
    prodServiceAccount: undefined,
    prodTokenTtlSeconds: 600,
    approvalId: () => "abcd1234",
    provider: o.provider,
    requireReason: o.requireReason ?? false,
  });
  return { prod, entries, asked, sessions };
}

Deno.test("require_reason refuses a session without a reason before the approver is asked", async () => {
  const { prod, asked } = setup({ requireReason: true });
  const err = await prod.openSession({ ...REQ, reason: undefined }, signal).catch((e) => e);
  assert.ok(err instanceof GateError && err.code === "bad_request", String(err));
  assert.match(err.message, /--reason/);
  assert.equal(asked.length, 0);
  const s = await prod.openSession(REQ, signal);
  assert.equal(s.request_reason, "gcp-gate approval abcd1234: ship it");
  await assert.rejects(
    prod.oneOffToken({ scopes: ["s"], ttlSeconds: 60 }, signal),
    /use with-prod/,
  );
  await prod.close(100);
});

Deno.test("a provider's grant is shown, acquired after approval, used for tokens, released", async () => {
  const f = fakeProvider();
  const { prod, entries, asked } = setup({ provider: f.provider });
  const s = await prod.openSession(REQ, signal);
  assert.equal(asked[0]!.grants, "a grant of E (roles: roles/x) for 1 h");
  assert.equal(asked[0]!.ttlSeconds, 300, "the session is capped by the grant's duration");
  assert.ok(s.expires_in <= 300);
  assert.equal(f.contexts[0]!.requestReason, "gcp-gate approval abcd1234: ship it");
  assert.equal(f.contexts[0]!.code, "K7P-QX2");
  const t = await prod.sessionToken(
    s.session_id,
    { scopes: undefined, ttlSeconds: undefined },
    signal,
  );
  assert.equal(t.token, "granted-token");
  assert.equal(f.asks[0]!.requestReason, "gcp-gate approval abcd1234: ship it");
  assert.ok(entries.some((e) => e.endpoint === "/session" && e.grant === "E/grants/g1"));
  assert.ok(entries.some((e) => e.endpoint === "/token" && e.grant === "E/grants/g1"));
  prod.revokeSession(s.session_id, "DELETE /session");
  await prod.close(100);
  assert.deepEqual(f.calls, ["acquire", "release E/grants/g1 revoked", "close"]);
  await assert.rejects(
    prod.oneOffToken({ scopes: ["s"], ttlSeconds: 60 }, signal),
    /pam_entitlement/,
  );
});

Deno.test("a grant that cannot be had ends the session it would have served", async () => {
  const f = fakeProvider(new GateError("denied", "grant G was DENIED by an approver"));
  const { prod, entries, sessions } = setup({ provider: f.provider });
  const err = await prod.openSession(REQ, signal).catch((e) => e);
  assert.ok(err instanceof GateError && err.code === "denied", String(err));
  assert.equal(sessions.size, 0);
  const line = entries.find((e) => e.endpoint === "/session")!;
  assert.equal(line.result, "denied");
  assert.match(line.error ?? "", /DENIED by an approver/);
  assert.match(line.approval ?? "", /^queue: ok/, "the local approval is on record too");
});

Deno.test("gate shutdown releases what open sessions hold", async () => {
  const f = fakeProvider();
  const { prod } = setup({ provider: f.provider });
  await prod.openSession(REQ, signal);
  await prod.close(100);
  assert.deepEqual(f.calls, ["acquire", "release E/grants/g1 shutdown", "close"]);
});
