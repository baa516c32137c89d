/** Prod tokens: from an open session (no new approval), or one-off after its own approval. */
import { GateError } from "../shared/errors.ts";
import type { AuditEntry } from "./audit.ts";
import type { MintedToken } from "./google_api.ts";
import { approvalRequest, approve, askedFields, decisionText } from "./prod_approval.ts";
import { mintProdToken } from "./prod_mint.ts";
import { requestReasonFor } from "./request_reason.ts";
import {
  errorCode,
  errorText,
  findSession,
  type ProdState,
  type ProdTokenAsk,
} from "./prod_state.ts";

/** The session's approved scopes, or `forbidden` naming the first one it was not approved for. */
function approvedScopes(
  approved: readonly string[],
  asked: readonly string[] | undefined,
): readonly string[] {
  const scopes = asked ?? approved;
  const extra = scopes.filter((x) => !approved.includes(x));
  if (extra.length > 0) {
    throw new GateError(
      "forbidden",
      `scope ${JSON.stringify(extra[0])} was not approved for this session (approved: ${
        approved.join(", ")
      }); open a new session that asks for it`,
    );
  }
  return scopes;
}

/** A prod token from an open session; each new token audited, reuses counted. */
export async function sessionToken(
  state: ProdState,
  id: string,
  opts: { ask: ProdTokenAsk; signal: AbortSignal },
): Promise<MintedToken> {
  const { ask } = opts;
  const { prodTtl, access, deps } = state;
  const s = findSession(state, id);
  const scopes = approvedScopes(s.scopes, ask.scopes);
  const remaining = Math.floor((s.expiresAt - state.now()) / 1000);
  // Short, and never past the session's end: a revoked session (lease
  // lost, DELETE, expiry) leaves no token that lives more than minutes.
  const lifetime = Math.max(1, Math.min(ask.ttlSeconds ?? prodTtl, prodTtl, remaining));
  const base: AuditEntry = {
    endpoint: "/token",
    level: "prod",
    result: "granted",
    email: s.email,
    scopes,
    ttl_seconds: lifetime,
    project: s.project,
    session: s.prefix,
    grant: access.get(s.prefix)?.handle?.label,
  };
  try {
    const key = `${s.prefix}|${[...scopes].sort().join(" ")}|${ask.ttlSeconds ?? "-"}`;
    const before = state.cache.get(key);
    const t = await mintProdToken(state, {
      key,
      scopes,
      lifetimeSeconds: lifetime,
      signal: opts.signal,
      access: access.get(s.prefix),
    });
    if (before === t) deps.audit.countHit("/token?session", "prod");
    else deps.audit.record(base);
    return t;
  } catch (err) {
    deps.audit.record({ ...base, result: "error", error: errorText(err), code: errorCode(err) });
    throw err;
  }
}

/** `GET /token?level=prod`: one token after its own approval (off with PAM or require_reason). */
export async function oneOffToken(
  state: ProdState,
  req: { scopes: readonly string[]; ttlSeconds: number },
  signal: AbortSignal,
): Promise<MintedToken> {
  const { deps } = state;
  if (deps.provider || deps.requireReason) {
    // A one-off token has no session to hold a grant, nor a reason field.
    throw new GateError(
      "forbidden",
      `one-off prod tokens are off when ${
        deps.provider ? "pam_entitlement" : "require_reason"
      } is set; use with-prod (a prod session) instead`,
    );
  }
  // The human is shown the lifetime the token will really have.
  const ttlSeconds = deps.prodServiceAccount === undefined
    ? req.ttlSeconds
    : Math.min(req.ttlSeconds, state.prodTtl);
  const ask = await approvalRequest(state, "token", {
    parts: {
      project: undefined,
      scopes: req.scopes,
      ttlSeconds,
      reason: undefined,
      command: undefined,
      notes: [],
    },
    signal,
  });
  const decision = await approve(state, ask, { endpoint: "/token", signal });
  const base: AuditEntry = {
    endpoint: "/token",
    level: "prod",
    result: "granted",
    ...askedFields(ask),
    approval: decisionText(decision),
  };
  const key = `once-${ask.id}|`;
  try {
    const t = await mintProdToken(state, {
      key,
      scopes: req.scopes,
      lifetimeSeconds: ttlSeconds,
      signal,
      access: { reason: requestReasonFor(ask.id, undefined), handle: undefined },
    });
    state.cache.delete(key);
    deps.audit.record(base);
    return t;
  } catch (err) {
    deps.audit.record({ ...base, result: "error", error: errorText(err) });
    throw err;
  }
}
