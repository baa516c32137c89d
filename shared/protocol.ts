/**
 * The gate protocol: HTTP/1.1 + JSON over a Unix socket. Container-side roles
 * send {@linkcode PROTOCOL_HEADER}; the gate refuses other versions with a
 * `protocol_mismatch` error rather than guessing.
 */
import type { ErrorCode } from "./errors.ts";

export const PROTOCOL_VERSION = 1;
export const PROTOCOL_HEADER = "x-gcp-gate-protocol";

/**
 * `POST /session` must carry this header (value `1`): the answer is then a
 * stream of {@linkcode LeaseEvent} lines on a connection that is the
 * session's lease. A request without it is refused (`protocol_mismatch`): a
 * session with no lease could outlive the with-prod that asked for it.
 */
export const LEASE_HEADER = "x-gcp-gate-lease";

/** Host used in URLs sent over the Unix socket (never resolved). */
export const SOCKET_HOST = "gate.invalid";

export const DEFAULT_SCOPES: readonly string[] = ["https://www.googleapis.com/auth/cloud-platform"];

/** Every error body: `{"error": "<message>", "code": "<machine code>"}`. */
export interface ErrorBody {
  error: string;
  code: ErrorCode;
}

export interface HealthResponse {
  status: "ok";
  uptime_seconds: number;
  version: string;
  protocol: number;
  /**
   * True on gates that bind prod sessions to a lease (`POST /session` with
   * {@linkcode LEASE_HEADER}); absent on older gates, which with-prod refuses
   * to ask rather than open a session nothing ends.
   */
  session_lease?: boolean;
}

export interface TokenResponse {
  access_token: string;
  expires_in: number;
  token_type: "Bearer";
}

export interface IdentityResponse {
  /** The engineer: the principal of the gate's ADC. */
  email: string;
  /**
   * The account whose dev tokens the gate hands out (null when none is
   * configured): what a metadata server reports as `service-accounts/default/email`.
   */
  service_account: string | null;
}

export interface ProjectNumberResponse {
  project_id: string;
  project_number: string;
}

export interface UniverseDomainResponse {
  universe_domain: string;
}

export interface IdentityTokenResponse {
  id_token: string;
}

/** What a caller tells the human when it asks for prod access. */
export interface ProdRequest {
  /** The command to run, redacted by the caller; shown to the human. */
  command?: string[];
  reason?: string;
  project?: string;
  scopes?: string[];
  /** Seconds the session should live (capped by the gate). */
  ttl_seconds?: number;
  /**
   * Confirmation code with-prod printed on the requester's terminal
   * (`K7P-QX2`, {@linkcode APPROVAL_CODE_PATTERN}); every approval method shows
   * it so the human can tell their request from one another process sent.
   */
  code?: string;
  /**
   * The caller's host name (advisory, like the command: the caller states it).
   * Shown as "from <host>" so the human knows which machine asks.
   */
  host?: string;
  /** How the caller reaches the gate, when it knows: "ssh" (advisory). */
  via?: "ssh";
}

/**
 * Letters and digits a human cannot confuse when comparing two screens
 * (no 0/O, 1/I/L, 5/S, Z (2), 8/B): 26 characters, 26^6 ≈ 3e8 codes.
 */
export const APPROVAL_CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY234679";
/** An approval code: 6 characters of the alphabet, shown as `ABC-DEF`. */
export const APPROVAL_CODE_PATTERN: RegExp =
  /^[ACDEFGHJKMNPQRTUVWXY234679]{3}-[ACDEFGHJKMNPQRTUVWXY234679]{3}$/;

export interface SessionResponse {
  session_id: string;
  expires_in: number;
  project: string | undefined;
  scopes: string[];
  /** The engineer who asked. */
  email: string;
  /** The account the session's tokens belong to (`prod_service_account`, else the engineer). */
  service_account: string;
  /**
   * Life of each token the session hands out (`prod_token_ttl_seconds`), or
   * null for the engineer's own credentials (Google's ~1 h).
   */
  token_ttl_seconds: number | null;
  /**
   * The request reason for this session's Google calls (names the approval
   * id the gate's audit log holds); with-prod passes it to gcloud & co.
   */
  request_reason?: string | undefined;
}

/**
 * One line (JSON, `\n`-terminated) of the answer to a leased `POST /session`
 * (`200`, `application/x-ndjson`). Empty lines are keep-alives (every
 * {@linkcode LEASE_KEEPALIVE_MS}). Order: `pending` at once; then `session`
 * (approved) or `error` (then the gate closes); after `session`, `ended` when
 * the session ends by revocation, expiry or gate shutdown (then the gate
 * closes). Closing the connection from the client's side ends the session.
 */
export type LeaseEvent =
  | { event: "pending" }
  | { event: "progress"; message: string }
  | ({ event: "session" } & SessionResponse)
  | { event: "error"; error: string; code: ErrorCode; retry_after_seconds?: number }
  | { event: "ended"; reason: string };

/**
 * Keep-alive period on a lease. The gate learns of a closed lease within
 * milliseconds (Deno notices the peer's EOF while a streamed answer is open);
 * a failed keep-alive write is the backstop, so the worst case is this period.
 */
export const LEASE_KEEPALIVE_MS = 2000;

/**
 * What with-prod reports when its temporary proxy refuses a caller that is
 * not in the wrapped process tree, so the refusal lands in the host's audit
 * log. Authenticated by the session id; every field is bounded by the gate.
 */
export interface RefusalReport {
  /** The refused process, when it could be found. */
  pid: number | null;
  /** Its command name (`/proc/<pid>/comm`), when known. */
  command: string | null;
  /** Why it was refused, e.g. "not a descendant of the wrapped command". */
  reason: string;
}

/** Body limits the gate enforces (and clients respect). */
export const LIMITS: Readonly<{
  maxBodyBytes: number;
  maxUrlBytes: number;
  maxArgs: number;
  maxArgChars: number;
  maxCommandBytes: number;
  maxReasonChars: number;
}> = Object.freeze({
  maxBodyBytes: 64 * 1024,
  maxUrlBytes: 4096,
  maxArgs: 512,
  maxArgChars: 2000,
  maxCommandBytes: 32 * 1024,
  maxReasonChars: 500,
});
