/**
 * The client side of a prod session lease (`POST /session` with
 * {@linkcode LEASE_HEADER}): one connection to the gate that stays open from
 * the request until with-prod ends. The gate streams the request's progress
 * and keep-alive bytes on it, and ends the session — pending approval
 * withdrawn, open session revoked, cached tokens dropped — as soon as the
 * connection closes, whether or not `DELETE /session` ever arrives. So a
 * process that swallows with-prod's DELETE cannot keep the session alive
 * after with-prod exits, unless it also holds the connection itself (see
 * docs/with-prod-sessions.md).
 */
import { type ErrorCode, GateError } from "./errors.ts";
import { sanitizeMessage } from "./redact.ts";
import {
  type ErrorBody,
  LEASE_HEADER,
  type LeaseEvent,
  type ProdRequest,
  PROTOCOL_HEADER,
  PROTOCOL_VERSION,
  type SessionResponse,
  SOCKET_HOST,
} from "./protocol.ts";
import { createLineReader, type LineReader } from "./lease_reader.ts";

export { createChunkedDecoder } from "./lease_reader.ts";

/** Why a lease ended, as with-prod reports it. */
export interface LeaseEnd {
  /** `closed`: we closed it; `ended`: the gate ended the session; `lost`: the connection broke. */
  readonly kind: "closed" | "ended" | "lost";
  readonly detail: string;
}

/** An open prod session, alive while this lease is. */
export interface SessionLease extends Disposable {
  readonly session: SessionResponse;
  /** Settles once, when the lease ends for any reason. */
  readonly ended: Promise<LeaseEnd>;
  /** Ends the lease (the gate revokes the session if DELETE did not). */
  close(): void;
}

/** Options for {@linkcode openSessionLease}. */
export interface OpenLeaseOptions {
  readonly socketPath: string;
  /** The path connect() uses, when not `socketPath` (a pinned directory's /proc path). */
  readonly connectPath?: string;
  /** Throws to refuse the socket before connecting. */
  readonly checkSocket?: (socketPath: string) => void;
  readonly request: ProdRequest;
  /** Aborting withdraws the request (or ends the lease). */
  readonly signal?: AbortSignal;
  /** Longest wait for a decision (ms). */
  readonly timeoutMs: number;
  /** Turns a failed connect into an actionable error. */
  readonly unreachable: (socketPath: string, err: unknown) => GateError;
  /** Accepts a code from the gate's answer (unknown ones become `upstream`). */
  readonly knownCode: (code: string) => boolean;
  /** What the gate is waiting for after the approval (e.g. a teammate approving a PAM grant). */
  readonly onProgress?: (message: string) => void;
}

const encoder = new TextEncoder();

function toError(status: number, body: string, knownCode: (c: string) => boolean): GateError {
  let parsed: Partial<ErrorBody> | undefined;
  try {
    parsed = JSON.parse(body) as Partial<ErrorBody>;
  } catch { /* not JSON */ }
  const code = typeof parsed?.code === "string" && knownCode(parsed.code)
    ? parsed.code as ErrorCode
    : "upstream";
  return new GateError(
    code,
    typeof parsed?.error === "string" ? parsed.error : `the gate answered HTTP ${status}`,
    { status },
  );
}

/** The head of `POST /session` with the lease header. */
function leaseRequestHead(contentLength: number): string {
  return [
    "POST /session HTTP/1.1",
    `Host: ${SOCKET_HOST}`,
    `${PROTOCOL_HEADER}: ${PROTOCOL_VERSION}`,
    `${LEASE_HEADER}: 1`,
    "Content-Type: application/json",
    `Content-Length: ${contentLength}`,
    "",
    "",
  ].join("\r\n");
}

/** Reads lease events until the decision: the session, or the gate's error. */
async function waitForSession(
  reader: LineReader,
  options: OpenLeaseOptions,
): Promise<SessionResponse> {
  for (;;) {
    const line = await reader.line();
    if (line === undefined) {
      throw new GateError(
        "gate_unreachable",
        "the gate closed the session request before a decision — is gcp-gate still running on the host?",
      );
    }
    if (line === "") continue; // keep-alive
    const event = parseEvent(line);
    if (event.event === "pending") continue;
    if (event.event === "progress") {
      // Printed on the user's terminal: no control characters, bounded.
      options.onProgress?.(sanitizeMessage(String(event.message), 300));
      continue;
    }
    if (event.event === "error") {
      throw new GateError(
        options.knownCode(event.code) ? event.code : "upstream",
        // Printed on the user's terminal: no control characters, bounded.
        sanitizeMessage(String(event.error), 1000),
        event.retry_after_seconds ? { retryAfterSeconds: event.retry_after_seconds } : {},
      );
    }
    if (event.event !== "session") {
      throw new GateError("upstream", "the gate ended the session request before a decision");
    }
    const { event: _, ...session } = event;
    return session;
  }
}

/**
 * Asks for a prod session and holds its lease. Resolves once a human
 * approved (the lease stays open); rejects with the gate's GateError
 * (`denied`, `rate_limited`, …) or when the gate goes away first.
 */
export async function openSessionLease(options: OpenLeaseOptions): Promise<SessionLease> {
  const { signal } = options;
  signal?.throwIfAborted();
  options.checkSocket?.(options.socketPath);
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({
      transport: "unix",
      path: options.connectPath ?? options.socketPath,
    });
  } catch (err) {
    throw options.unreachable(options.socketPath, err);
  }
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    try {
      conn.close();
    } catch { /* already closed */ }
  };
  let timedOut = false;
  const timeout = setTimeout(() => {
    timedOut = true;
    close();
  }, options.timeoutMs);
  const onAbort = (): void => close();
  signal?.addEventListener("abort", onAbort);

  const body = encoder.encode(JSON.stringify(options.request));
  const head = leaseRequestHead(body.length);
  const reader = createLineReader(conn);
  try {
    await writeAll(conn, encoder.encode(head));
    await writeAll(conn, body);
    const answer = await reader.head();
    if (answer.status !== 200) {
      throw toError(answer.status, await reader.rest(answer), options.knownCode);
    }
    if (!answer.contentType.startsWith("application/x-ndjson")) {
      // An older gate ignores the lease header and answers once, after the
      // decision: a session nothing would end. Never run with it.
      throw new GateError(
        "protocol_mismatch",
        "the gate on the host is older than this with-prod and does not bind prod sessions to it (no session lease); update gcp-gate on the host",
      );
    }
    const session = await waitForSession(reader, options);
    clearTimeout(timeout);
    signal?.removeEventListener("abort", onAbort);
    return holdLease(session, reader, close);
  } catch (err) {
    clearTimeout(timeout);
    signal?.removeEventListener("abort", onAbort);
    close();
    if (signal?.aborted) throw signal.reason ?? err;
    if (timedOut) {
      throw new GateError(
        "timeout",
        `no decision on the prod request within ${Math.round(options.timeoutMs / 1000)} s`,
      );
    }
    if (err instanceof GateError) throw err;
    if (err instanceof SyntaxError) {
      throw new GateError(
        "upstream",
        "the gate's answer to the session request was not understood",
      );
    }
    throw new GateError(
      "gate_unreachable",
      `lost the connection to the gate while waiting for approval: ${(err as Error).message}`,
    );
  }
}

/** Reads after approval until the lease ends; `close` ends it from our side. */
function holdLease(
  session: SessionResponse,
  reader: LineReader,
  close: () => void,
): SessionLease {
  let closing = false;
  const ended = (async (): Promise<LeaseEnd> => {
    try {
      for (;;) {
        const line = await reader.line();
        if (line === undefined) break;
        if (line === "") continue;
        const event = parseEvent(line);
        if (event.event === "ended") {
          return {
            kind: "ended",
            detail: `the gate ended the session (${sanitizeMessage(String(event.reason), 200)})`,
          };
        }
      }
    } catch (err) {
      if (!closing) {
        return { kind: "lost", detail: `the connection to the gate broke: ${String(err)}` };
      }
    } finally {
      close();
    }
    return closing
      ? { kind: "closed", detail: "closed by with-prod" }
      : { kind: "lost", detail: "the gate closed the connection (stopped or restarted?)" };
  })();
  const end = (): void => {
    closing = true;
    close();
  };
  return { session, ended, close: end, [Symbol.dispose]: end };
}

/** One event line; anything but a JSON object with an `event` is a protocol error. */
function parseEvent(line: string): LeaseEvent {
  const v: unknown = JSON.parse(line);
  if (typeof v !== "object" || v === null || typeof (v as { event?: unknown }).event !== "string") {
    throw new GateError("upstream", "the gate sent an event that is not understood");
  }
  return v as LeaseEvent;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}
