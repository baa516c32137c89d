/**
 * The prod path: nothing here happens without a human's approval. A request
 * is shown to the approver with everything it will grant; an approval opens a
 * session (or mints one token); every decision is audited, never a token.
 *
 * Prod tokens are the engineer's own ADC token, or — when
 * `prod_service_account` is set — minted by impersonating that account for
 * `prod_token_ttl_seconds` (10 min by default, never above 1 h: Google's
 * default cap on generateAccessToken, and never past the session's end).
 * Short tokens are what makes revocation mean something: a session ends with
 * its with-prod's lease, and the last token it handed out dies minutes later.
 *
 * The steps live beside this file, each a function of the shared
 * {@linkcode ProdState}: prod_approval.ts (approval request, approval and its
 * audit), prod_session.ts (opening, revoking, refusals), prod_token.ts
 * (session and one-off tokens), prod_mint.ts (minting and the token cache).
 */
import { createProdState, findSession, type ProdService, sessionResponse } from "./prod_state.ts";
import type { ProdDeps } from "./prod_state.ts";
import { openSession, recordRefusal, revokeSession } from "./prod_session.ts";
import { oneOffToken, sessionToken } from "./prod_token.ts";

export {
  MAX_PROD_TOKEN_TTL_SECONDS,
  MAX_REFUSALS_PER_SESSION,
  type ProdDeps,
  type ProdService,
  type ProdTokenAsk,
  REVOKED_GATE_STOPPING,
} from "./prod_state.ts";

/** Creates the prod service. */
export function createProdService(deps: ProdDeps): ProdService {
  const state = createProdState(deps);
  return {
    openSession: (req, signal, onProgress) => openSession(state, req, { signal, onProgress }),
    describeSession: (id) => sessionResponse(state, findSession(state, id)),
    isOpen: (id) => deps.sessions.find(id) !== undefined,
    revokeSession: (id, reason) => revokeSession(state, id, reason),
    recordRefusal: (id, report) => recordRefusal(state, id, report),
    sessionToken: (id, ask, signal) => sessionToken(state, id, { ask, signal }),
    oneOffToken: (req, signal) => oneOffToken(state, req, signal),
    reset: () => state.cache.clear(),
    close: (timeoutMs) => state.access.close(timeoutMs),
  };
}
