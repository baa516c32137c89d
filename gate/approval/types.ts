/**
 * The contract between the gate's prod path (gate/routes, sessions) and the
 * human approval chain (gate/approval/*). Prod access is the one thing no
 * automated process may get by itself: the default approver denies.
 */

/** What the human is asked to approve. Every method shows all of it. */
export interface ApprovalRequest {
  /** Short random id, shown to the human and used by `gcp-gate approve <id>`. */
  readonly id: string;
  /** Engineer email (who asks, as far as the host knows). */
  readonly email: string;
  readonly project: string | undefined;
  readonly scopes: readonly string[];
  /** Lifetime of the token or session being asked for. */
  readonly ttlSeconds: number;
  readonly reason: string | undefined;
  /** The command to be run, already redacted and capped (advisory: the caller supplies it). */
  readonly command: readonly string[] | undefined;
  /** Notes about caps applied to the command (e.g. "argument 3 truncated to 2000 chars"). */
  readonly notes: readonly string[];
  readonly kind: "session" | "token";
  /**
   * with-prod's confirmation code, printed on the requester's terminal;
   * undefined when the request did not come from with-prod. Shown by every
   * method so the human can tell their request from a look-alike.
   */
  readonly code?: string | undefined;
  /** "build-vm-3 via ssh": where the caller says it runs (advisory); undefined: not stated. */
  readonly from?: string | undefined;
  /**
   * The account whose tokens an approval hands out (`prod_service_account`);
   * undefined: the engineer's own ADC credentials, which ignore the scopes
   * and lifetime asked for. Every method says which.
   */
  readonly serviceAccount?: string | undefined;
  /**
   * Life of each token minted for `serviceAccount` (prod_token_ttl_seconds);
   * undefined with the engineer's own credentials (Google's ~1 h).
   */
  readonly tokenTtlSeconds?: number | undefined;
  /**
   * What an approval grants when it is not plain credentials (a Privileged
   * Access Manager grant: entitlement, roles, duration); shown as "Grants:".
   */
  readonly grants?: string | undefined;
  /**
   * The profile whose socket the request arrived on (set by the gate, never
   * by the caller); undefined for a gate without profiles.
   */
  readonly profile?: string | undefined;
}

export type ApprovalMethod = "dialog" | "terminal" | "queue" | "none";

export interface ApprovalDecision {
  readonly approved: boolean;
  readonly method: ApprovalMethod;
  /** Why: "approved in dialog", "timed out after 60 s", methods tried… (no secrets). */
  readonly detail: string;
}

/**
 * Decides one request. Resolves with the human's decision; rejects with a
 * GateError `rate_limited` (429) or `approval_unavailable` where that applies.
 * `signal` aborts when the asking client disconnects: close the dialog, drop
 * the queue entry.
 */
export interface Approver {
  decide(req: ApprovalRequest, signal: AbortSignal): Promise<ApprovalDecision>;
}

/** Denies everything: the default until an approval chain is configured. */
export const DENY_ALL: Approver = {
  decide: () =>
    Promise.resolve({
      approved: false,
      method: "none",
      detail: "no approval method is configured",
    }),
};
