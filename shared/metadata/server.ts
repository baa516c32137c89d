/**
 * Serving a metadata handler on 127.0.0.1, for gcp-metadata-proxy and for
 * with-prod's temporary proxy.
 *
 * We accept TCP connections ourselves and serve HTTP/1.1 on each one in
 * this process (../http1/serve.ts); nothing else listens. That gives:
 * - a per-connection verdict (`authorize`) taken before any byte reaches the
 *   handler, kept for the connection's keep-alive requests. It cannot be
 *   keyed on the remote port with `Deno.serve` (another process could bind
 *   the port after the vetted one closed and inherit the verdict), and a
 *   relay to a second listener would be a door around the check: any
 *   same-uid process could connect to that listener directly.
 * - bounded resources against any local uid: at most `maxConnections` at
 *   once (at the cap a silent, else the longest-idle, connection makes room, so idle
 *   connections cannot lock a new client out), idle and header timeouts,
 *   and EMFILE treated as back-pressure (logged, an idle connection closed,
 *   the accept retried) instead of ending the process, which would free the
 *   port for anyone to take.
 */
import type { Logger } from "../log.ts";
import { CONNECTION_DEFAULTS, serveListener } from "../http1/accept.ts";

import type { WireRequest } from "../http1/parse.ts";
import { errorBytes, errorPayload, toResponse } from "./responses.ts";

/** What `authorize` learns about a connection. */
export interface ConnectionInfo {
  /** The client's end (127.0.0.1 and its ephemeral port). */
  readonly remoteAddr: Deno.NetAddr;
  /** Our end (127.0.0.1 and the listening port). */
  readonly localAddr: Deno.NetAddr;
}

/** Decides once per connection whether it may talk to the handler. */
export type ConnectionAuthorizer = (conn: ConnectionInfo) => boolean | Promise<boolean>;

/** Options for {@linkcode startMetadataServer}. */
export interface MetadataServerOptions {
  /** 0 picks a free port. */
  port: number;
  /** Metadata requests carry no body; the handler reads only what a WireRequest has. */
  handler: (req: WireRequest) => Response | Promise<Response>;
  log: Logger;
  /** Default 127.0.0.1. Never a non-loopback address: tokens must not leave the machine. */
  hostname?: string;
  /** When set, every connection must be allowed before any of its bytes are read. */
  authorize?: ConnectionAuthorizer;
  /** Most concurrent connections (default 256). */
  maxConnections?: number | undefined;
  /** An idle keep-alive connection is closed after this long (default 30 s). */
  idleTimeoutMs?: number | undefined;
  /** A request head must arrive within this long of its first byte (default 10 s). */
  headerTimeoutMs?: number | undefined;
  /**
   * Aborting it shuts the server down. Pass the same signal to the handler
   * (`MetadataDeps.signal`) so long `wait_for_change` waits end first.
   */
  signal?: AbortSignal;
}

/** A running metadata server. */
export interface MetadataServer extends AsyncDisposable {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
  /** Live connections now (for tests and diagnostics). */
  readonly connections: number;
  /** Stops listening, waits (bounded) for in-flight requests. */
  shutdown(): Promise<void>;
}

const DRAIN_MS = 2000;

const REFUSAL = errorBytes(
  403,
  "Forbidden: this metadata server serves only the process tree it was started for",
);

/** Vets `conn` with `authorize` (failing closed); true when it may be served. */
async function vet(
  conn: Deno.TcpConn,
  authorize: ConnectionAuthorizer,
  log: Logger,
): Promise<boolean> {
  let allowed = false;
  try {
    allowed = await authorize({ remoteAddr: conn.remoteAddr, localAddr: conn.localAddr });
  } catch (err) {
    // Fail closed: an authorizer that cannot decide refuses.
    log.warn("connection authorization failed; refusing", { error: String(err) });
  }
  if (!allowed) {
    try {
      await conn.write(REFUSAL);
    } catch { /* the caller is gone */ }
  }
  return allowed;
}

/** Starts serving `options.handler`; resolves once it listens. */
export function startMetadataServer(options: MetadataServerOptions): Promise<MetadataServer> {
  const { log, authorize } = options;
  const listener = Deno.listen({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port,
    transport: "tcp",
  });
  const served = serveListener({
    listener,
    log,
    handler: options.handler,
    onError: (err: unknown): Response => {
      log.error("metadata request failed", { error: String(err) });
      return toResponse(errorPayload(500, "Internal Server Error"), false);
    },
    refuse: errorBytes,
    // Metadata requests are bodiless GET/HEADs: a body is never read.
    maxBodyBytes: 0,
    maxConnections: options.maxConnections ?? CONNECTION_DEFAULTS.maxConnections,
    idleTimeoutMs: options.idleTimeoutMs ?? CONNECTION_DEFAULTS.idleTimeoutMs,
    headerTimeoutMs: options.headerTimeoutMs ?? CONNECTION_DEFAULTS.headerTimeoutMs,
    vet: authorize ? (conn) => vet(conn, authorize, log) : undefined,
    drainMs: DRAIN_MS,
  });
  const shutdown = (): Promise<void> => served.shutdown();
  const signal = options.signal;
  if (signal) {
    if (signal.aborted) void shutdown();
    else signal.addEventListener("abort", () => void shutdown(), { once: true });
  }
  return Promise.resolve({
    port: listener.addr.port,
    finished: served.finished,
    get connections() {
      return served.connections;
    },
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  });
}
