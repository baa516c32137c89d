/**
 * The approval step of the prod path: what the human is shown (the approval
 * request), asking the approver, and auditing every outcome but approval.
 */
import { GateError, isGateError } from "../shared/errors.ts";
import { sanitizeMessage } from "../shared/redact.ts";
import type { ApprovalDecision, ApprovalRequest } from "./approval/types.ts";
import type { AuditEntry } from "./audit.ts";
import { errorCode, errorText, type ProdState } from "./prod_state.ts";

/** The audit fields every prod decision shares, from what the human was asked. */
export function askedFields(ask: ApprovalRequest): Partial<AuditEntry> {
  return {
    email: ask.email,
    scopes: ask.scopes,
    ttl_seconds: ask.ttlSeconds,
    project: ask.project,
    command: ask.command,
    reason: ask.reason,
    approval_id: ask.id,
    approval_code: ask.code,
    ...(ask.from === undefined ? {} : { caller_host: ask.from }),
  };
}

/** How a decision reads in the audit log (`queue: approved via queue`). */
export function decisionText(decision: ApprovalDecision): string {
  return `${decision.method}: ${sanitizeMessage(decision.detail, 200)}`;
}

/** What the human is asked to approve: the request plus who asks and what it grants. */
export async function approvalRequest(
  state: ProdState,
  kind: "session" | "token",
  opts: {
    parts: Omit<ApprovalRequest, "id" | "email" | "kind" | "serviceAccount">;
    signal: AbortSignal;
  },
): Promise<ApprovalRequest> {
  const { deps } = state;
  const email = await deps.identity.email(opts.signal);
  const grants = deps.provider ? { grants: await deps.provider.describe(opts.signal) } : {};
  return {
    id: state.approvalId(),
    email,
    kind,
    serviceAccount: deps.prodServiceAccount,
    // What each token really lives: the dialog states it (own credentials: Google's ~1 h).
    tokenTtlSeconds: deps.prodServiceAccount === undefined ? undefined : state.prodTtl,
    ...grants,
    ...opts.parts,
  };
}

/** Asks the approver; audits and throws unless approved. */
export async function approve(
  state: ProdState,
  req: ApprovalRequest,
  opts: { endpoint: string; signal: AbortSignal },
): Promise<ApprovalDecision> {
  const { audit, approver } = state.deps;
  const { signal } = opts;
  const base: AuditEntry = {
    endpoint: opts.endpoint,
    level: "prod",
    result: "denied",
    ...askedFields(req),
  };
  let decision: ApprovalDecision;
  try {
    decision = await approver.decide(req, signal);
  } catch (err) {
    const rateLimited = isGateError(err, "rate_limited");
    audit.record({
      ...base,
      result: rateLimited ? "rate_limited" : "error",
      error: signal.aborted ? "the client went away before a decision" : errorText(err),
      code: errorCode(err),
    });
    throw err;
  }
  if (!decision.approved || signal.aborted) {
    audit.record({
      ...base,
      // A caller that hung up before anyone decided is "withdrawn" and may be
      // folded (the container can repeat it at will). A human's approval that
      // arrived as the caller left stays a decision, never folded.
      ...(signal.aborted && !decision.approved ? { result: "withdrawn" } : {}),
      approval: decisionText(decision),
    });
    throw new GateError(
      "denied",
      `prod access was not approved (${
        sanitizeMessage(decision.detail, 200)
      }); ask the engineer at the host to approve it`,
    );
  }
  return decision;
}
