/**
 * Serving a metadata handler on 127.0.0.1, for gcp-metadata-proxy and for
 * with-prod's temporary proxy.
 *
 * We accept TCP connections ourselves and serve HTTP/1.1 on each one in
 * this process (http1.ts); nothing else listens. That gives:
 * - a per-connection verdict (`authorize`) taken before any byte reaches the
 *   handler, kept for the connection's keep-alive requests. It cannot be
 *   keyed on the remote port with `Deno.serve` (another process could bind
 *   the port after the vetted one closed and inherit the verdict), and a
 *   relay to a second listener would be a door around the check: any
 *   same-uid process could connect to that listener directly.
 * - bounded resources against any local uid: at most `maxConnections` at
 *   once (at the cap the longest-idle connection makes room, so idle
 *   connections cannot lock a new client out), idle and header timeouts,
 *   and EMFILE treated as back-pressure (logged, an idle connection closed,
 *   the accept retried) instead of ending the process, which would free the
 *   port for anyone to take.
 */
import type { Logger } from "../log.ts";
import { type ConnTable, createConnTable } from "./conn_table.ts";
import { errorBytes, type Http1Conn, type Http1Handler, serveHttp1 } from "./http1.ts";
import { errorPayload, toResponse } from "./responses.ts";

/** What `authorize` learns about a connection. */
export interface ConnectionInfo {
  /** The client's end (127.0.0.1 and its ephemeral port). */
  readonly remoteAddr: Deno.NetAddr;
  /** Our end (127.0.0.1 and the listening port). */
  readonly localAddr: Deno.NetAddr;
}

/** Decides once per connection whether it may talk to the handler. */
export type ConnectionAuthorizer = (conn: ConnectionInfo) => boolean | Promise<boolean>;

/** Defaults for the connection limits (also the config keys' defaults). */
export const CONNECTION_DEFAULTS: Readonly<{
  maxConnections: number;
  idleTimeoutMs: number;
  headerTimeoutMs: number;
}> = Object.freeze({ maxConnections: 256, idleTimeoutMs: 30_000, headerTimeoutMs: 10_000 });

/** Options for {@linkcode startMetadataServer}. */
export interface MetadataServerOptions {
  /** 0 picks a free port. */
  port: number;
  handler: Http1Handler;
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
/** Repeated warnings (cap reached, EMFILE) at most this often. */
const WARN_EVERY_MS = 60_000;
const MAX_BACKOFF_MS = 500;

const REFUSAL = errorBytes(
  403,
  "Forbidden: this metadata server serves only the process tree it was started for",
);

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

function isOutOfFiles(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === "EMFILE" || code === "ENFILE";
}

/** Warns the first time and then at most every WARN_EVERY_MS, counting the rest. */
function throttledWarn(log: Logger, msg: string): (fields: Record<string, unknown>) => void {
  let last = -Infinity;
  let skipped = 0;
  return (fields) => {
    const now = Date.now();
    if (now - last < WARN_EVERY_MS) {
      skipped++;
      return;
    }
    log.warn(msg, skipped > 0 ? { ...fields, since_last_warning: skipped } : fields);
    last = now;
    skipped = 0;
  };
}

/** What the accept loop needs. */
interface AcceptContext {
  readonly listener: Deno.TcpListener;
  readonly table: ConnTable;
  readonly signal: AbortSignal;
  readonly maxConnections: number;
  readonly headerTimeoutMs: number;
  readonly log: Logger;
  /** Serves one accepted connection (vetting it first when asked to). */
  readonly serve: (conn: Deno.TcpConn, state: Http1Conn) => Promise<void>;
}

/** Accepts until the listener closes; out of file descriptors is back-pressure, not an end. */
async function acceptLoop(ctx: AcceptContext): Promise<void> {
  const { table, log } = ctx;
  const warnCap = throttledWarn(
    log,
    "connection cap reached; closing the longest-idle connections to make room",
  );
  const warnFiles = throttledWarn(
    log,
    "out of file descriptors; closing idle connections and retrying (still serving)",
  );
  let backoff = 10;
  while (!ctx.signal.aborted) {
    let conn: Deno.TcpConn;
    try {
      conn = await ctx.listener.accept();
      backoff = 10;
    } catch (err) {
      if (ctx.signal.aborted || err instanceof Deno.errors.BadResource) return;
      if (isOutOfFiles(err)) {
        warnFiles({ connections: table.size, error: (err as Error).message });
        table.evictOne();
      } else {
        log.debug("accept failed; retrying", { error: String(err) });
      }
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      continue;
    }
    if (table.size >= ctx.maxConnections) {
      warnCap({ max_connections: ctx.maxConnections });
      if (!table.evictOne()) {
        closeQuietly(conn);
        continue;
      }
    }
    const state: Http1Conn = { deadline: Date.now() + ctx.headerTimeoutMs };
    table.add(conn, state);
    void ctx.serve(conn, state).finally(() => table.remove(conn));
  }
}

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
  const idleTimeoutMs = options.idleTimeoutMs ?? CONNECTION_DEFAULTS.idleTimeoutMs;
  const headerTimeoutMs = options.headerTimeoutMs ?? CONNECTION_DEFAULTS.headerTimeoutMs;
  const listener = Deno.listen({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port,
    transport: "tcp",
  });
  const ac = new AbortController();
  const table = createConnTable({
    sweepMs: Math.max(50, Math.min(1000, Math.min(idleTimeoutMs, headerTimeoutMs) / 4)),
  });
  const http = {
    handler: options.handler,
    onError: (err: unknown): Response => {
      log.error("metadata request failed", { error: String(err) });
      return toResponse(errorPayload(500, "Internal Server Error"), false);
    },
    idleTimeoutMs,
    headerTimeoutMs,
    now: Date.now,
    signal: ac.signal,
  };
  const accepting = acceptLoop({
    listener,
    table,
    signal: ac.signal,
    maxConnections: options.maxConnections ?? CONNECTION_DEFAULTS.maxConnections,
    headerTimeoutMs,
    log,
    serve: async (conn, state) => {
      if (!authorize || await vet(conn, authorize, log)) await serveHttp1(conn, state, http);
    },
  });

  const finished = Promise.withResolvers<void>();
  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      ac.abort();
      try {
        listener.close();
      } catch { /* already closed */ }
      await accepting;
      // Idle connections go now; those inside the handler get DRAIN_MS to answer.
      const drainUntil = Date.now() + DRAIN_MS;
      for (table.closeIdle(); table.size > 0 && Date.now() < drainUntil; table.closeIdle()) {
        await new Promise((r) => setTimeout(r, 20));
      }
      table.closeAll();
      finished.resolve();
    })();
    return stopping;
  };
  const signal = options.signal;
  if (signal) {
    if (signal.aborted) void shutdown();
    else signal.addEventListener("abort", () => void shutdown(), { once: true });
  }
  return Promise.resolve({
    port: listener.addr.port,
    finished: finished.promise,
    get connections() {
      return table.size;
    },
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  });
}
