/** Typed fakes for the prod steps' unit tests (prod_*_test.ts). */
import type { Approver } from "./approval/types.ts";
import type { AuditEntry, AuditLog } from "./audit.ts";
import type { GoogleApi } from "./google_api.ts";
import type { IdentityService } from "./identity.ts";
import { createProdState, type ProdDeps, type ProdState } from "./prod_state.ts";
import { createSessionStore } from "./sessions.ts";

/** An audit log that keeps what it is given. */
export function recordingAudit(): AuditLog & { entries: AuditEntry[]; hits: string[] } {
  const entries: AuditEntry[] = [];
  const hits: string[] = [];
  return {
    entries,
    hits,
    record: (e) => void entries.push(e),
    countHit: (endpoint) => void hits.push(endpoint),
    flush: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}

/** A Google API whose every call fails with "unused", but for `over`. */
export function stubGoogleApi(over: Partial<GoogleApi> = {}): GoogleApi {
  const unused = (): Promise<never> => Promise.reject(new Error("unused"));
  return {
    generateAccessToken: unused,
    generateIdToken: unused,
    tokenEmail: unused,
    projectNumber: unused,
    oauthToken: unused,
    stsExchange: unused,
    getText: unused,
    ...over,
  };
}

/** A Google API whose generateAccessToken records each call and mints `prod-<n>`. */
export function mintingApi(
  calls: { sa: string; lifetime: number; reason: string | undefined }[],
  now: () => number,
): GoogleApi {
  return stubGoogleApi({
    generateAccessToken: (_src, sa, _scopes, lifetime, opts) => {
      calls.push({ sa, lifetime, reason: opts?.requestReason });
      return Promise.resolve({ token: `prod-${calls.length}`, expiresAt: now() + lifetime * 1000 });
    },
  });
}

/** An engineer who is eng@example.com; nothing else is asked. */
export const FAKE_IDENTITY: IdentityService = {
  email: () => Promise.resolve("eng@example.com"),
  projectNumber: () => Promise.reject(new Error("unused")),
  idToken: () => Promise.reject(new Error("unused")),
  reset: () => {},
};

/** The approver that approves everything via the queue. */
export const APPROVE: Approver = {
  decide: () => Promise.resolve({ approved: true, method: "queue", detail: "approved via queue" }),
};

/** A prod state over fakes; `clock.t` is the time in ms. */
export function fakeProdState(over: Partial<ProdDeps> = {}): {
  state: ProdState;
  audit: ReturnType<typeof recordingAudit>;
  minted: { sa: string; lifetime: number; reason: string | undefined }[];
  sources: { n: number };
  clock: { t: number };
} {
  const clock = { t: 1_000_000 };
  const now = (): number => clock.t;
  const minted: { sa: string; lifetime: number; reason: string | undefined }[] = [];
  const audit = recordingAudit();
  const sources = { n: 0 };
  const deps: ProdDeps = {
    approver: APPROVE,
    api: mintingApi(minted, now),
    source: () => {
      sources.n++;
      return Promise.resolve({ token: `adc-${sources.n}`, expiresAt: now() + 3600_000 });
    },
    identity: FAKE_IDENTITY,
    sessions: createSessionStore({ now }),
    audit,
    prodServiceAccount: "prod@p.iam.gserviceaccount.com",
    prodTokenTtlSeconds: 600,
    now,
    approvalId: () => "abcd1234",
    ...over,
  };
  return { state: createProdState(deps), audit, minted, sources, clock };
}
