/** Minting prod tokens: the engineer's own, a PAM grant's, or `prod_service_account`'s. */
import type { ProdState } from "./prod_state.ts";
import type { SessionAccess } from "./prod_access.ts";
import { type IssuedToken, needsRefresh } from "./tokens.ts";

/** What {@linkcode mintProdToken} mints. */
export interface MintOptions {
  /** Cache key: tokens of one key are shared until they need a refresh. */
  key: string;
  scopes: readonly string[];
  lifetimeSeconds: number;
  signal: AbortSignal;
  /** The session's upstream access (a PAM grant) and its request reason. */
  access?: SessionAccess | undefined;
}

/** Mints (or reuses) a prod token for `opts.key`, living `opts.lifetimeSeconds`. */
export async function mintProdToken(state: ProdState, opts: MintOptions): Promise<IssuedToken> {
  const { deps, now, cache } = state;
  const { key, scopes, lifetimeSeconds, access: x } = opts;
  const sa = deps.prodServiceAccount;
  const provider = deps.provider;
  const handle = x?.handle;
  // A provider (PAM grant) decides whether a token may still be had, and mints it.
  const viaProvider = handle && provider
    ? () => provider.token(handle, { scopes, lifetimeSeconds, requestReason: x?.reason ?? "" })
    : undefined;
  if (!sa) {
    // The engineer's own token: its life is Google's, not the session's.
    const t = viaProvider ? await viaProvider() : await deps.source();
    return { ...t, issuedAt: now() };
  }
  const hit = cache.get(key);
  if (hit && !needsRefresh(hit, now())) return hit;
  return await state.flight.run(key, async () => {
    const issuedAt = now();
    const t = viaProvider ? await viaProvider() : await deps.api.generateAccessToken(
      (await deps.source()).token,
      sa,
      scopes,
      lifetimeSeconds,
      { requestReason: x?.reason },
    );
    const issued = { ...t, issuedAt };
    cache.set(key, issued);
    return issued;
  }, opts.signal);
}

/** Forgets a session's cached tokens. */
export function dropCachedTokens(state: ProdState, prefix: string): void {
  for (const k of state.cache.keys()) if (k.startsWith(`${prefix}|`)) state.cache.delete(k);
}
