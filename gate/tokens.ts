/**
 * Dev tokens: minted by impersonating the dev service account, cached per
 * (sorted scopes, ttl), and shared between concurrent callers so a burst of
 * cold requests costs one upstream call.
 */
import type { GoogleApi, MintedToken } from "./google_api.ts";
import { GateError } from "../shared/errors.ts";
import { createSingleFlight } from "./single_flight.ts";

export interface DevTokenRequest {
  readonly scopes: readonly string[];
  readonly ttlSeconds: number;
}

export interface DevTokenResult extends MintedToken {
  /** True unless this caller started the upstream mint (a cache hit or a shared wait). */
  readonly cached: boolean;
}

export interface DevTokenMinter {
  /** A token for `req`; `signal` cancels this caller's wait only, never a shared mint. */
  get(req: DevTokenRequest, signal?: AbortSignal): Promise<DevTokenResult>;
  /** A fresh cached token for `req`, without waiting (the hot path). */
  peek(req: DevTokenRequest): DevTokenResult | undefined;
  /** Drops every cached token (after re-login or credential errors). */
  reset(): void;
}

/** Dependencies of {@linkcode createDevTokenMinter}. */
export interface DevTokenDeps {
  api: GoogleApi;
  /** An access token of the engineer's ADC. */
  source: () => Promise<string>;
  serviceAccount: string | undefined;
  now?: () => number;
  /** Most distinct (scopes, ttl) entries kept; the oldest is dropped beyond it. */
  maxEntries?: number;
}

/** A token with the time it was minted (to size its refresh margin). */
export type IssuedToken = MintedToken & { readonly issuedAt: number };

/** True when `token` should be replaced: less than min(5 min, 10 % of its life) left. */
export function needsRefresh(token: IssuedToken, now: number): boolean {
  const lifetime = token.expiresAt - token.issuedAt;
  const margin = Math.min(5 * 60_000, lifetime * 0.1);
  return token.expiresAt - now <= margin;
}

/** The cache key: scope order and duplicates never cost a second token. */
export function devTokenKey(req: DevTokenRequest): string {
  return `${[...new Set(req.scopes)].sort().join(" ")}|${req.ttlSeconds}`;
}

/** Creates the dev token minter. */
export function createDevTokenMinter(deps: DevTokenDeps): DevTokenMinter {
  const now = deps.now ?? Date.now;
  const maxEntries = deps.maxEntries ?? 256;
  const cache = new Map<string, IssuedToken>();
  const flight = createSingleFlight<IssuedToken>();
  let generation = 0;

  async function mint(req: DevTokenRequest, key: string): Promise<IssuedToken> {
    const sa = deps.serviceAccount;
    if (!sa) {
      throw new GateError(
        "config",
        "no service_account configured: set service_account in the gate's config (the account dev tokens impersonate) and restart the gate",
        { status: 503 },
      );
    }
    const gen = generation;
    const issuedAt = now();
    const source = await deps.source();
    const t = await deps.api.generateAccessToken(source, sa, req.scopes, req.ttlSeconds);
    const issued = { ...t, issuedAt };
    // A reset (re-login) while this mint was in flight: don't cache a token of the old identity.
    if (gen === generation) {
      cache.delete(key);
      cache.set(key, issued);
      if (cache.size > maxEntries) cache.delete(cache.keys().next().value!);
    }
    return issued;
  }

  // Callers reuse parsed request objects (routes memoise per query string): key each once.
  const keys = new WeakMap<DevTokenRequest, string>();
  function keyOf(req: DevTokenRequest): string {
    let k = keys.get(req);
    if (k === undefined) keys.set(req, k = devTokenKey(req));
    return k;
  }

  function peek(req: DevTokenRequest): DevTokenResult | undefined {
    const hit = cache.get(keyOf(req));
    return hit && !needsRefresh(hit, now())
      ? { token: hit.token, expiresAt: hit.expiresAt, cached: true }
      : undefined;
  }

  return {
    peek,
    async get(req, signal) {
      const hit = peek(req);
      if (hit) return hit;
      const key = keyOf(req);
      const leader = !flight.has(key);
      const t = await flight.run(key, () => mint(req, key), signal);
      return { token: t.token, expiresAt: t.expiresAt, cached: !leader };
    },
    reset() {
      generation++;
      cache.clear();
    },
  };
}
