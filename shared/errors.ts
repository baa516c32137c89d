/**
 * One small error family for every role. Callers branch on `code`, never on
 * the message text; `status` is the HTTP status a server answers with.
 */
export type ErrorCode =
  | "usage"
  | "config"
  | "bad_request"
  | "not_found"
  | "method_not_allowed"
  | "too_large"
  | "protocol_mismatch"
  | "gate_unreachable"
  | "timeout"
  | "credentials_missing"
  | "credentials_expired"
  | "upstream"
  | "denied"
  | "rate_limited"
  | "approval_unavailable"
  | "session_not_found"
  | "forbidden"
  | "unsafe_path"
  | "already_running"
  | "untrusted_socket"
  | "grant_ended"
  | "internal";

const DEFAULT_STATUS: Readonly<Record<ErrorCode, number>> = Object.freeze({
  usage: 400,
  config: 400,
  bad_request: 400,
  not_found: 404,
  method_not_allowed: 405,
  too_large: 413,
  protocol_mismatch: 400,
  gate_unreachable: 503,
  timeout: 504,
  credentials_missing: 503,
  credentials_expired: 401,
  upstream: 502,
  denied: 403,
  rate_limited: 429,
  approval_unavailable: 403,
  session_not_found: 404,
  forbidden: 403,
  unsafe_path: 500,
  already_running: 500,
  untrusted_socket: 503,
  grant_ended: 403,
  internal: 500,
});

/** Options for {@linkcode GateError}. */
export interface GateErrorOptions {
  status?: number;
  cause?: unknown;
  /** Seconds after which a retry may succeed (429/503). */
  retryAfterSeconds?: number;
}

/** An error a user can meet: `message` says what happened and what to do. */
export class GateError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options: GateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GateError";
    this.code = code;
    this.status = options.status ?? DEFAULT_STATUS[code];
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** True when `err` is a {@linkcode GateError} with one of `codes`. */
export function isGateError(err: unknown, ...codes: ErrorCode[]): err is GateError {
  return err instanceof GateError && (codes.length === 0 || codes.includes(err.code));
}

/** Exit codes shared by every executable (documented in the README). */
export const EXIT: Readonly<{ OK: 0; FAILURE: 1; USAGE: 2 }> = Object.freeze({
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
});
