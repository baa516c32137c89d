/**
 * Caches for metadata servers. Access tokens are kept until min(5 min, 10 %
 * of their life) remain, so a burst of 10^5 requests costs at most one
 * upstream call; concurrent misses share that call (single flight).
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
  /** A cached token that is still fresh (what `get` would return at once), synchronously. */
  peekFresh(scopes: readonly string[]): CachedToken | undefined;
  /** A cached token that has not expired yet, even if due for refresh. */
  peekValid(scopes: readonly string[]): CachedToken | undefined;
  clear(): void;
}

/** Options for {@linkcode createTokenCache}. */
export interface TokenCacheOptions {
  fetch: TokenFetcher;
  now?: () => number;
  /**
   * Most distinct scope sets kept (default 64). Scopes come from the
   * container, so without a bound a loop over random scope lists grows the
   * cache forever; the oldest entry is evicted first.
   */
  maxEntries?: number;
}

/** True while `t` may still be served: more than min(5 min, 10 %) of its life left. */
export function isFresh(t: CachedToken, now: number): boolean {
  const margin = Math.min(5 * 60_000, (t.expiresAt - t.fetchedAt) * 0.1);
  // +1 s so that a served `expires_in` (whole seconds, floored) stays above
  // the margin: clients refresh 3¾–5 min early and must not see "expiring".
  return t.expiresAt - now > margin + 1000;
}

/** Creates a token cache in front of `options.fetch`. */
export function createTokenCache(options: TokenCacheOptions): TokenCache {
  const now = options.now ?? Date.now;
  const maxEntries = options.maxEntries ?? 64;
  const cache = new Map<string, CachedToken>();
  const inflight = new Map<string, Promise<CachedToken>>();
  // One scope (the hot default) is its own key: no set, sort and join per request.
  const keyOf = (scopes: readonly string[]): string =>
    scopes.length === 1 ? scopes[0]! : [...new Set(scopes)].sort().join(" ");

  function store(key: string, t: CachedToken): void {
    cache.delete(key);
    cache.set(key, t);
    while (cache.size > maxEntries) {
      const oldest = cache.keys().next().value;
      if (oldest === undefined) break;
      cache.delete(oldest);
    }
  }

  return {
    get(scopes) {
      const key = keyOf(scopes);
      const hit = cache.get(key);
      if (hit && isFresh(hit, now())) return Promise.resolve(hit);
      let p = inflight.get(key);
      if (!p) {
        const fetchedAt = now();
        p = options.fetch(key.split(" ")).then((r) => {
          const t: CachedToken = {
            accessToken: r.access_token,
            expiresAt: fetchedAt + r.expires_in * 1000,
            fetchedAt,
          };
          store(key, t);
          return t;
        }).finally(() => inflight.delete(key));
        inflight.set(key, p);
      }
      return p;
    },
    peekFresh(scopes) {
      const hit = cache.get(keyOf(scopes));
      return hit && isFresh(hit, now()) ? hit : undefined;
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

/** A value fetched once and kept; failures are not kept, so the next call retries. */
export interface Memo<T> {
  get(): Promise<T>;
}

/** Caches the first successful result of `load`; concurrent callers share one call. */
export function memoize<T>(load: () => Promise<T>): Memo<T> {
  let value: { v: T } | undefined;
  let pending: Promise<T> | undefined;
  return {
    get() {
      if (value) return Promise.resolve(value.v);
      pending ??= load().then((v) => {
        value = { v };
        return v;
      }).finally(() => (pending = undefined));
      return pending;
    },
  };
}

/** Options for {@linkcode createExpiringCache}. */
export interface ExpiringCacheOptions {
  now?: () => number;
  maxEntries?: number;
}

/** A keyed single-flight cache whose entries carry their own expiry. */
export interface ExpiringCache<T> {
  /** `load` returns the value and when it stops being servable (ms since epoch). */
  get(key: string, load: () => Promise<{ value: T; freshUntil: number }>): Promise<T>;
}

/** Creates an {@linkcode ExpiringCache} bounded to `maxEntries` (oldest evicted). */
export function createExpiringCache<T>(options: ExpiringCacheOptions = {}): ExpiringCache<T> {
  const now = options.now ?? Date.now;
  const maxEntries = options.maxEntries ?? 64;
  const cache = new Map<string, { value: T; freshUntil: number }>();
  const inflight = new Map<string, Promise<T>>();
  return {
    get(key, load) {
      const hit = cache.get(key);
      if (hit && hit.freshUntil > now()) return Promise.resolve(hit.value);
      let p = inflight.get(key);
      if (!p) {
        p = load().then((r) => {
          cache.delete(key);
          if (r.freshUntil > now()) cache.set(key, r);
          while (cache.size > maxEntries) {
            const oldest = cache.keys().next().value;
            if (oldest === undefined) break;
            cache.delete(oldest);
          }
          return r.value;
        }).finally(() => inflight.delete(key));
        inflight.set(key, p);
      }
      return p;
    },
  };
}
