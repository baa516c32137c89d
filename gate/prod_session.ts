/**
 * Prod sessions: opening one (approval, the session, its upstream access),
 * revoking it, and auditing what its proxy refused.
 */
import type { RefusalReport, SessionResponse } from "../shared/protocol.ts";
import { GateError, isGateError } from "../shared/errors.ts";
import type { ApprovalDecision, ApprovalRequest } from "./approval/types.ts";
import { approvalRequest, approve, askedFields, decisionText } from "./prod_approval.ts";
import type { SessionAccess } from "./prod_access.ts";
import { dropCachedTokens } from "./prod_mint.ts";
import type { ParsedProdRequest } from "./prod_request.ts";
import {
  errorCode,
  errorText,
  findSession,
  MAX_REFUSALS_PER_SESSION,
  type ProdState,
  REVOKED_GATE_STOPPING,
  sessionResponse,
} from "./prod_state.ts";
import type { Session } from "./sessions.ts";

/** An approved request: what was asked, and the human's decision. */
interface Approved {
  readonly ask: ApprovalRequest;
  readonly decision: ApprovalDecision;
}

/** Audits an approved request that did not become a session (refused by the store or upstream). */
function auditApprovedButRefused(
  state: ProdState,
  approved: Approved,
  outcome: { result: "denied" | "rate_limited" | "error"; error: string; code: string },
): void {
  state.deps.audit.record({
    endpoint: "/session",
    level: "prod",
    result: outcome.result,
    ...askedFields(approved.ask),
    approval: decisionText(approved.decision),
    error: outcome.error,
    code: outcome.code,
  });
}

/** Refuses a session without a reason when `require_reason` is set. */
export function checkReason(state: ProdState, req: ParsedProdRequest): void {
  if (state.deps.requireReason && req.reason === undefined) {
    // Before anyone is asked: a dialog for a request that must fail wastes an approval.
    throw new GateError(
      "bad_request",
      "a reason is required for prod access (require_reason): run with-prod --reason '<why>' -- <command>",
    );
  }
}

/** Creates the session store entry; audits a refusal after approval (too many sessions). */
function createApprovedSession(
  state: ProdState,
  req: ParsedProdRequest,
  approved: Approved,
): Session {
  const { ask } = approved;
  try {
    return state.deps.sessions.create({
      email: ask.email,
      project: req.project,
      scopes: req.scopes,
      command: req.command,
    }, ask.ttlSeconds);
  } catch (err) {
    // Approved, yet refused (too many open sessions): the audit must say
    // so, or the log shows a human's approval that led nowhere.
    auditApprovedButRefused(state, approved, {
      result: isGateError(err, "rate_limited") ? "rate_limited" : "error",
      error: errorText(err),
      code: errorCode(err),
    });
    throw err;
  }
}

/** Acquires the session's upstream access (a PAM grant); on failure, no session. */
async function acquireAccess(
  state: ProdState,
  s: Session,
  opts: {
    req: ParsedProdRequest;
    approved: Approved;
    signal: AbortSignal;
    onProgress: ((message: string) => void) | undefined;
  },
): Promise<SessionAccess> {
  const { req, signal, onProgress } = opts;
  const { ask } = opts.approved;
  try {
    return await state.access.open({
      prefix: s.prefix,
      expiresAt: s.expiresAt,
      approvalId: ask.id,
      email: ask.email,
      reason: req.reason,
      code: req.code,
      command: req.command,
      signal,
      ...(onProgress ? { onProgress } : {}),
    });
  } catch (err) {
    // Approved here, refused upstream (a denied or expired grant): no session.
    state.deps.sessions.revoke(s.id);
    auditApprovedButRefused(state, opts.approved, {
      result: isGateError(err, "denied") ? "denied" : "error",
      error: signal.aborted ? "the request ended before the grant was active" : errorText(err),
      code: errorCode(err),
    });
    throw err;
  }
}

/** `POST /session`: approval, then the session, then its access; every outcome audited. */
export async function openSession(
  state: ProdState,
  req: ParsedProdRequest,
  opts: { signal: AbortSignal; onProgress?: ((message: string) => void) | undefined },
): Promise<SessionResponse> {
  checkReason(state, req);
  const { signal } = opts;
  // A session cannot outlive the grant it is for: ask the human for what it really gets.
  const ttlSeconds = Math.min(req.ttlSeconds, state.deps.provider?.maxSessionSeconds ?? Infinity);
  const ask = await approvalRequest(state, "session", {
    parts: {
      project: req.project,
      scopes: req.scopes,
      ttlSeconds,
      reason: req.reason,
      command: req.command,
      notes: req.notes,
      code: req.code,
      ...(req.from === undefined ? {} : { from: req.from }),
    },
    signal,
  });
  const decision = await approve(state, ask, { endpoint: "/session", signal });
  const approved = { ask, decision };
  const s = createApprovedSession(state, req, approved);
  const held = await acquireAccess(state, s, {
    req,
    approved,
    signal,
    onProgress: opts.onProgress,
  });
  state.deps.audit.record({
    endpoint: "/session",
    level: "prod",
    result: "granted",
    ...askedFields(ask),
    session: s.prefix,
    grant: held.handle?.label,
    approval: decisionText(decision),
  });
  return sessionResponse(state, s);
}

/** Ends the session, drops its tokens and its upstream access; audits `reason`. */
export function revokeSession(state: ProdState, id: string, reason: string): void {
  const s = state.deps.sessions.revoke(id);
  if (!s) {
    throw new GateError(
      "session_not_found",
      `no open prod session with id ${id.slice(0, 8)}…; it already expired or was revoked`,
    );
  }
  dropCachedTokens(state, s.prefix);
  state.refusals.delete(s.prefix);
  state.deps.audit.record({
    endpoint: "/session",
    level: "prod",
    result: "revoked",
    email: s.email,
    scopes: s.scopes,
    project: s.project,
    session: s.prefix,
    reason,
    grant: state.access.get(s.prefix)?.handle?.label,
  });
  state.access.end(s.prefix, reason === REVOKED_GATE_STOPPING ? "shutdown" : "revoked");
}

/** Audits a caller the session's proxy refused; past the bound, one line says so, then nothing. */
export function recordRefusal(state: ProdState, id: string, report: RefusalReport): void {
  const s = findSession(state, id);
  const n = (state.refusals.get(s.prefix) ?? 0) + 1;
  state.refusals.set(s.prefix, n);
  if (n > MAX_REFUSALS_PER_SESSION + 1) return;
  state.deps.audit.record({
    endpoint: "/session/refusal",
    level: "prod",
    result: "refused",
    email: s.email,
    project: s.project,
    session: s.prefix,
    caller_pid: report.pid,
    caller_command: report.command,
    refusal: n > MAX_REFUSALS_PER_SESSION
      ? `more than ${MAX_REFUSALS_PER_SESSION} refusals in this session; further ones are not logged`
      : report.reason,
  });
}
