/**
 * Dev tokens: minted by impersonating the dev service account, cached per
 * (sorted scopes, ttl), and shared between concurrent callers so a burst of
 * cold requests costs one upstream call.
 */
import type { GoogleApi, MintedToken } from "./google_api.ts";
import type { SourceCredential } from "./adc.ts";
import { GateError } from "../shared/errors.ts";

export interface DevTokenRequest {
  readonly scopes: readonly string[];
  readonly ttlSeconds: number;
}

export interface DevTokenResult extends MintedToken {
  readonly cached: boolean;
}

export interface DevTokenMinter {
  get(req: DevTokenRequest): Promise<DevTokenResult>;
  /** Drops every cached token (after re-login or credential errors). */
  reset(): void;
}

/** Dependencies of {@linkcode createDevTokenMinter}. */
export interface DevTokenDeps {
  api: GoogleApi;
  source: () => SourceCredential;
  serviceAccount: string | undefined;
  now?: () => number;
}

/** True when `token` should be replaced: less than min(5 min, 10 %) left. */
export function needsRefresh(token: MintedToken & { issuedAt: number }, now: number): boolean {
  const lifetime = token.expiresAt - token.issuedAt;
  const margin = Math.min(5 * 60_000, lifetime * 0.1);
  return token.expiresAt - now <= margin;
}

export function createDevTokenMinter(deps: DevTokenDeps): DevTokenMinter {
  const now = deps.now ?? Date.now;
  const cache = new Map<string, MintedToken & { issuedAt: number }>();
  const inflight = new Map<string, Promise<MintedToken & { issuedAt: number }>>();

  async function mint(req: DevTokenRequest): Promise<MintedToken & { issuedAt: number }> {
    const sa = deps.serviceAccount;
    if (!sa) {
      throw new GateError(
        "config",
        "no service_account configured: set service_account in the gate's config (the account dev tokens impersonate)",
        { status: 503 },
      );
    }
    const issuedAt = now();
    const source = await deps.source().getToken();
    const t = await deps.api.generateAccessToken(source.token, sa, req.scopes, req.ttlSeconds);
    return { ...t, issuedAt };
  }

  return {
    async get(req) {
      const key = `${[...req.scopes].sort().join(" ")}|${req.ttlSeconds}`;
      const hit = cache.get(key);
      if (hit && !needsRefresh(hit, now())) {
        return { token: hit.token, expiresAt: hit.expiresAt, cached: true };
      }
      let p = inflight.get(key);
      if (!p) {
        p = mint(req).finally(() => inflight.delete(key));
        inflight.set(key, p);
      }
      const t = await p;
      cache.set(key, t);
      return { token: t.token, expiresAt: t.expiresAt, cached: false };
    },
    reset() {
      cache.clear();
    },
  };
}
