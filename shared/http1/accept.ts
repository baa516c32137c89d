/**
 * The accept loop every server here shares (the gate's Unix sockets, the
 * metadata proxies' TCP ports): at most `maxConnections` at once (at the cap
 * a silent connection, else the one nearest its deadline, makes room (see
 * conn_table.ts), so idle connections cannot
 * lock a new client out), and EMFILE treated as back-pressure (logged, an idle
 * connection closed, the accept retried) instead of ending the process, which
 * would free the socket for anyone to take.
 */
import type { Logger } from "../log.ts";
import { closeQuietly, type ConnTable, createConnTable } from "./conn_table.ts";
import { type Http1Conn, type Http1Options, serveHttp1 } from "./serve.ts";
import { Turns } from "./turns.ts";

/** Defaults for the connection limits (also the config keys' defaults). */
export const CONNECTION_DEFAULTS: Readonly<{
  maxConnections: number;
  idleTimeoutMs: number;
  headerTimeoutMs: number;
}> = Object.freeze({ maxConnections: 256, idleTimeoutMs: 30_000, headerTimeoutMs: 10_000 });

/** Repeated warnings (cap reached, EMFILE) at most this often. */
const WARN_EVERY_MS = 60_000;
const MAX_BACKOFF_MS = 500;

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
export interface AcceptContext<C extends Deno.Conn> {
  readonly listener: Deno.Listener<C>;
  readonly table: ConnTable;
  readonly signal: AbortSignal;
  readonly maxConnections: number;
  /** A new connection counts as idle until its first byte (the loop keeps it current after). */
  readonly idleTimeoutMs: number;
  readonly log: Logger;
  /** The accept loop's share of the thread (turns.ts). */
  readonly turns: Turns;
  /** Serves one accepted connection (vetting it first when asked to). */
  readonly serve: (conn: C, state: Http1Conn) => Promise<void>;
}

/** Accepts until the listener closes; out of file descriptors is back-pressure, not an end. */
export async function acceptLoop<C extends Deno.Conn>(ctx: AcceptContext<C>): Promise<void> {
  const { table, log } = ctx;
  const warnCap = throttledWarn(
    log,
    "connection cap reached; closing silent or longest-idle connections to make room",
  );
  const warnFiles = throttledWarn(
    log,
    "out of file descriptors; closing idle connections and retrying (still serving)",
  );
  let backoff = 10;
  while (!ctx.signal.aborted) {
    // An accept with connections queued completes at once: without this, a
    // client connecting in a loop kept this loop, and the thread, to itself.
    for (let turn = ctx.turns.check(); turn; turn = ctx.turns.check()) await turn;
    let conn: C;
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
    // Idle until its first byte, like a keep-alive connection between requests: a
    // shorter deadline would make every newcomer the first to be evicted at the cap.
    const state: Http1Conn = { deadline: Date.now() + ctx.idleTimeoutMs };
    table.add(conn, state);
    void ctx.serve(conn, state).finally(() => table.remove(conn));
  }
}

/** Options for {@linkcode serveListener}: the loop's options, the limits, and an optional vetting. */
export interface ServeListenerOptions<C extends Deno.Conn>
  extends Omit<Http1Options, "now" | "signal" | "turns"> {
  readonly listener: Deno.Listener<C>;
  readonly log: Logger;
  readonly maxConnections: number;
  /** Runs before any byte of `conn` is read; false: it is closed unserved. */
  readonly vet?: ((conn: C) => Promise<boolean>) | undefined;
  /** Longest wait for connections inside the handler at shutdown (ms). */
  readonly drainMs: number;
}

/** A listener being served. */
export interface ServedListener {
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
  /** Live connections now (for tests and diagnostics). */
  readonly connections: number;
  /** New limits for connections accepted (and idle periods started) from now on. */
  setLimits(limits: { maxConnections: number; idleTimeoutMs: number }): void;
  /** Stops accepting, closes idle connections, waits (bounded) for busy ones, closes the rest. */
  shutdown(): Promise<void>;
}

/** Serves HTTP/1.1 on every connection `options.listener` accepts, within the limits. */
export function serveListener<C extends Deno.Conn>(
  options: ServeListenerOptions<C>,
): ServedListener {
  const { listener, vet } = options;
  const ac = new AbortController();
  const shortest = Math.min(options.idleTimeoutMs, options.headerTimeoutMs);
  const table = createConnTable({ sweepMs: Math.max(50, Math.min(1000, shortest / 4)) });
  // Mutable copies: a reload may change the limits while connections are served.
  const http: { -readonly [K in keyof Http1Options]: Http1Options[K] } = {
    ...options,
    now: Date.now,
    signal: ac.signal,
    turns: new Turns(),
  };
  const ctx: { -readonly [K in keyof AcceptContext<C>]: AcceptContext<C>[K] } = {
    listener,
    table,
    signal: ac.signal,
    maxConnections: options.maxConnections,
    idleTimeoutMs: options.idleTimeoutMs,
    log: options.log,
    // Its own budget, not its connections': a backlog drains at the same pace
    // however busy they keep the socket (a connection accepted late looks
    // younger than one already answering, and is the one kept at the cap).
    turns: new Turns(),
    serve: async (conn, state) => {
      if (!vet || await vet(conn)) await serveHttp1(conn, state, http);
    },
  };
  const accepting = acceptLoop(ctx);
  const finished = Promise.withResolvers<void>();
  let stopping: Promise<void> | undefined;
  return {
    finished: finished.promise,
    get connections() {
      return table.size;
    },
    setLimits(limits) {
      ctx.maxConnections = limits.maxConnections;
      ctx.idleTimeoutMs = limits.idleTimeoutMs;
      http.idleTimeoutMs = limits.idleTimeoutMs;
    },
    shutdown() {
      stopping ??= (async () => {
        ac.abort();
        closeQuietly(listener);
        await accepting;
        // Idle connections go now; those inside the handler get drainMs to answer.
        const drainUntil = Date.now() + options.drainMs;
        for (table.closeIdle(); table.size > 0 && Date.now() < drainUntil; table.closeIdle()) {
          await new Promise((r) => setTimeout(r, 20));
        }
        table.closeAll();
        finished.resolve();
      })();
      return stopping;
    },
  };
}
