/**
 * The typed client every container-side role uses to talk to the gate over
 * its Unix socket. Every call has a deadline; a missing or dead gate becomes
 * an actionable GateError instead of the runtime's opaque text.
 */
import { type ErrorCode, GateError } from "./errors.ts";
import { type RawAnswer, RawHttpError, rawRequest } from "./raw_http.ts";
import { openSessionLease, type SessionLease } from "./session_lease.ts";
import {
  type ErrorBody,
  type HealthResponse,
  type IdentityResponse,
  type IdentityTokenResponse,
  type ProdRequest,
  type ProjectNumberResponse,
  PROTOCOL_HEADER,
  PROTOCOL_VERSION,
  type RefusalReport,
  type SessionResponse,
  SOCKET_HOST,
  type TokenResponse,
  type UniverseDomainResponse,
} from "./protocol.ts";

/** Options for {@linkcode createGateClient}. */
export interface GateClientOptions {
  /** The gate socket, as configured (named in every message). */
  socketPath: string;
  /**
   * The path connect() uses when it differs from `socketPath`: with-prod
   * connects through its pinned directory (`/proc/self/fd/<n>/gate.sock`,
   * see wrap/pinned_dir.ts), so renaming a parent directory cannot swap
   * the socket between its checks and its calls.
   */
  connectPath?: string;
  /** Default deadline per call (ms). */
  timeoutMs?: number;
  /**
   * Runs before every connect and throws to refuse the socket (see
   * shared/socket_trust.ts): the socket can be replaced between calls, e.g.
   * when an ssh forward comes back.
   */
  checkSocket?: (socketPath: string) => void;
}

/** Per-call options. */
export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** Options of {@linkcode GateClient.openSession}. */
export interface OpenSessionOptions extends CallOptions {
  /** What the gate waits for after the approval (a teammate approving a PAM grant). */
  onProgress?: (message: string) => void;
}

export interface TokenRequest {
  scopes?: readonly string[];
  ttlSeconds?: number;
  /** A prod session id: the token comes from that session. */
  session?: string;
}

export interface IdentityTokenRequest {
  audience: string;
  format?: "standard" | "full";
  licenses?: boolean;
}

/** The gate's API as seen from the container. */
export interface GateClient {
  health(opts?: CallOptions): Promise<HealthResponse>;
  token(req?: TokenRequest, opts?: CallOptions): Promise<TokenResponse>;
  identity(opts?: CallOptions): Promise<IdentityResponse>;
  projectNumber(project?: string, opts?: CallOptions): Promise<ProjectNumberResponse>;
  universeDomain(opts?: CallOptions): Promise<UniverseDomainResponse>;
  identityToken(req: IdentityTokenRequest, opts?: CallOptions): Promise<IdentityTokenResponse>;
  /**
   * Asks for a prod session and holds its lease (one connection, open until
   * `close()`): resolves once approved. The gate revokes the session when
   * the lease ends, so keep it for as long as the session is needed.
   */
  openSession(req: ProdRequest, opts?: OpenSessionOptions): Promise<SessionLease>;
  getSession(id: string, opts?: CallOptions): Promise<SessionResponse>;
  deleteSession(id: string, opts?: CallOptions): Promise<void>;
  /** Reports a caller refused by with-prod's proxy, for the host's audit log. */
  reportRefusal(id: string, report: RefusalReport, opts?: CallOptions): Promise<void>;
  close(): void;
}

const KNOWN_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  "usage",
  "config",
  "bad_request",
  "not_found",
  "method_not_allowed",
  "too_large",
  "protocol_mismatch",
  "gate_unreachable",
  "timeout",
  "credentials_missing",
  "credentials_expired",
  "upstream",
  "denied",
  "rate_limited",
  "approval_unavailable",
  "session_not_found",
  "forbidden",
  "grant_ended",
  "unsafe_path",
  "already_running",
  "untrusted_socket",
  "internal",
]);

function unreachable(socketPath: string, err: unknown): GateError {
  let reason: string;
  try {
    const st = Deno.statSync(socketPath);
    reason = st.isSocket
      ? `gate socket ${socketPath} exists but nothing answers — restart gcp-gate on the host`
      : `${socketPath} is not a socket — check socket_path`;
  } catch (statErr) {
    reason = statErr instanceof Deno.errors.NotFound
      ? `gate socket not found at ${socketPath} — is gcp-gate running on the host, and is its socket directory mounted here?`
      : `cannot reach gate socket ${socketPath}: ${(err as Error).message}`;
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    reason = `permission denied on gate socket ${socketPath} — run as the user that owns it`;
  }
  return new GateError("gate_unreachable", reason, { cause: err });
}

/** Largest gate answer accepted (ID tokens and session answers are a few KiB). */
const MAX_ANSWER_BYTES = 1024 * 1024;

/** Calls one JSON endpoint on a Unix socket (see {@linkcode createSocketCaller}). */
export type SocketCall = <T>(
  method: "GET" | "POST" | "DELETE",
  path: string,
  body?: unknown,
  opts?: CallOptions,
) => Promise<T>;

/** Options for {@linkcode createSocketCaller}. */
export interface SocketCallerOptions {
  socketPath: string;
  /** The path connect() uses, when not `socketPath` (see GateClientOptions.connectPath). */
  connectPath?: string;
  /** Default deadline per call (ms). */
  timeoutMs?: number;
  /** Turns a failed connect into an actionable error. */
  unreachable: (socketPath: string, err: unknown) => GateError;
  /** Throws to refuse the socket before connecting. */
  checkSocket?: (socketPath: string) => void;
}

/**
 * JSON over HTTP/1.1 on a Unix socket with the protocol header, a deadline per
 * call, and `{error, code}` answers turned into GateErrors. Shared by the gate
 * client and the gate's admin client.
 */
export function createSocketCaller(options: SocketCallerOptions): SocketCall {
  const { socketPath } = options;
  const defaultTimeout = options.timeoutMs ?? 10_000;

  return async function call<T>(
    method: "GET" | "POST" | "DELETE",
    path: string,
    body?: unknown,
    opts: CallOptions = {},
  ): Promise<T> {
    const timeoutMs = opts.timeoutMs ?? defaultTimeout;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    options.checkSocket?.(socketPath);
    let res: RawAnswer;
    try {
      // One connection per call: the gate is local, a connect costs ~0.1 ms,
      // and a cancelled call (client gone) closes exactly its own request.
      res = await rawRequest({
        target: { transport: "unix", path: options.connectPath ?? socketPath },
        method,
        hostHeader: SOCKET_HOST,
        path,
        headers: {
          [PROTOCOL_HEADER]: String(PROTOCOL_VERSION),
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal,
        maxBytes: MAX_ANSWER_BYTES,
      });
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? err;
      if (timeout.aborted) {
        throw new GateError(
          "timeout",
          `the gate did not answer ${method} ${path.split("?")[0]} within ${timeoutMs} ms`,
        );
      }
      if (err instanceof RawHttpError) {
        throw new GateError("upstream", `the gate's answer was not understood: ${err.message}`);
      }
      throw options.unreachable(socketPath, err);
    }
    let parsed: unknown;
    try {
      parsed = res.body === "" ? undefined : JSON.parse(res.body);
    } catch {
      throw new GateError(
        "upstream",
        `the gate answered ${res.status} with a body that is not JSON`,
      );
    }
    if (res.status < 200 || res.status > 299) {
      const eb = parsed as Partial<ErrorBody> | undefined;
      const code = typeof eb?.code === "string" && KNOWN_CODES.has(eb.code)
        ? eb.code as ErrorCode
        : "upstream";
      const msg = typeof eb?.error === "string" ? eb.error : `the gate answered HTTP ${res.status}`;
      const retry = Number(res.headers["retry-after"]);
      throw new GateError(code, msg, {
        status: res.status,
        ...(Number.isFinite(retry) && retry > 0 ? { retryAfterSeconds: retry } : {}),
      });
    }
    return parsed as T;
  };
}

/** Creates a client for the gate at `options.socketPath`. */
export function createGateClient(options: GateClientOptions): GateClient {
  const call = createSocketCaller({
    socketPath: options.socketPath,
    ...(options.connectPath === undefined ? {} : { connectPath: options.connectPath }),
    unreachable,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.checkSocket === undefined ? {} : { checkSocket: options.checkSocket }),
  });

  function query(params: Record<string, string | number | undefined>): string {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== "") q.set(k, String(v));
    }
    const s = q.toString();
    return s ? `?${s}` : "";
  }

  return {
    health: (opts) => call("GET", "/health", undefined, opts),
    token: (req = {}, opts) =>
      call(
        "GET",
        `/token${
          query({
            scopes: req.scopes?.join(","),
            ttl_seconds: req.ttlSeconds,
            session: req.session,
          })
        }`,
        undefined,
        opts,
      ),
    identity: (opts) => call("GET", "/identity", undefined, opts),
    projectNumber: (project, opts) =>
      call("GET", `/project-number${query({ project })}`, undefined, opts),
    universeDomain: (opts) => call("GET", "/universe-domain", undefined, opts),
    identityToken: (req, opts) =>
      call(
        "GET",
        `/identity-token${
          query({
            audience: req.audience,
            format: req.format,
            licenses: req.licenses === undefined ? undefined : String(req.licenses),
          })
        }`,
        undefined,
        opts,
      ),
    openSession: (req, opts = {}) =>
      openSessionLease({
        socketPath: options.socketPath,
        ...(options.connectPath === undefined ? {} : { connectPath: options.connectPath }),
        // The lease is a call like any other: the socket is checked first.
        ...(options.checkSocket === undefined ? {} : { checkSocket: options.checkSocket }),
        request: req,
        ...(opts.signal ? { signal: opts.signal } : {}),
        timeoutMs: opts.timeoutMs ?? options.timeoutMs ?? 10_000,
        unreachable,
        knownCode: (c) => KNOWN_CODES.has(c),
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      }),
    getSession: (id, opts) => call("GET", `/session${query({ id })}`, undefined, opts),
    deleteSession: async (id, opts) => {
      await call("DELETE", `/session${query({ id })}`, undefined, opts);
    },
    reportRefusal: async (id, report, opts) => {
      await call("POST", `/session/refusal${query({ id })}`, report, opts);
    },
    // Nothing is held between calls; kept so callers need not know that.
    close: () => {},
  };
}
