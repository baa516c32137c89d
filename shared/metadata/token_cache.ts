/**
 * A token cache for metadata servers: tokens are kept until min(5 min, 10 %
 * of their life) remain, and concurrent misses share one upstream call.
 */
import type { TokenResponse } from "../protocol.ts";

export interface CachedToken {
  readonly accessToken: string;
  /** Absolute expiry, ms since epoch. */
  readonly expiresAt: number;
  readonly fetchedAt: number;
}

/** Fetches a token for `scopes` (sorted, deduplicated) from upstream. */
export type TokenFetcher = (scopes: readonly string[]) => Promise<TokenResponse>;

export interface TokenCache {
  /** A fresh-enough token for `scopes`. */
  get(scopes: readonly string[]): Promise<CachedToken>;
  /** A cached token that has not expired yet, even if due for refresh. */
  peekValid(scopes: readonly string[]): CachedToken | undefined;
  clear(): void;
}

export interface TokenCacheOptions {
  fetch: TokenFetcher;
  now?: () => number;
}

function fresh(t: CachedToken, now: number): boolean {
  const margin = Math.min(5 * 60_000, (t.expiresAt - t.fetchedAt) * 0.1);
  return t.expiresAt - now > margin;
}

export function createTokenCache(options: TokenCacheOptions): TokenCache {
  const now = options.now ?? Date.now;
  const cache = new Map<string, CachedToken>();
  const inflight = new Map<string, Promise<CachedToken>>();
  const keyOf = (scopes: readonly string[]): string => [...new Set(scopes)].sort().join(" ");

  return {
    get(scopes) {
      const key = keyOf(scopes);
      const hit = cache.get(key);
      if (hit && fresh(hit, now())) return Promise.resolve(hit);
      let p = inflight.get(key);
      if (!p) {
        const fetchedAt = now();
        p = options.fetch(key.split(" ")).then((r) => {
          const t: CachedToken = {
            accessToken: r.access_token,
            expiresAt: fetchedAt + r.expires_in * 1000,
            fetchedAt,
          };
          cache.set(key, t);
          return t;
        }).finally(() => inflight.delete(key));
        inflight.set(key, p);
      }
      return p;
    },
    peekValid(scopes) {
      const hit = cache.get(keyOf(scopes));
      return hit && hit.expiresAt - now() > 0 ? hit : undefined;
    },
    clear() {
      cache.clear();
    },
  };
}
