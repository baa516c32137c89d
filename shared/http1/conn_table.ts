/**
 * The live connections of one listener (a gate socket, a metadata proxy) and
 * their deadlines: one coarse sweep closes those past their deadline
 * (instead of a timer per read: the deadlines bound resources, they are not
 * precise timeouts), and at the
 * connection cap or out of file descriptors a connection that never sent a
 * complete request makes room first, then the one closest to its deadline.
 * A connection inside the handler has no deadline (`deadline === 0`) and is
 * never chosen.
 */
import type { Http1Conn } from "./serve.ts";

/** Options for {@linkcode createConnTable}. */
export interface ConnTableOptions {
  /** How often the sweep runs, ms. */
  readonly sweepMs: number;
}

/** The live connections of one server. */
export interface ConnTable {
  readonly size: number;
  add(conn: Deno.Conn, state: Http1Conn): void;
  /** Forgets `conn` and closes it (idempotent). */
  remove(conn: Deno.Conn): void;
  /** Closes a silent connection, else the one closest to its deadline; false when every one is inside the handler. */
  evictOne(): boolean;
  /** Closes every connection that is not inside the handler. */
  closeIdle(): void;
  /** Stops the sweep and closes everything. */
  closeAll(): void;
}

/** Closes `conn` (or a listener); already closed is fine. */
export function closeQuietly(conn: { close(): void }): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

/** Creates the table and starts its sweep. */
export function createConnTable(options: ConnTableOptions): ConnTable {
  const live = new Map<Deno.Conn, Http1Conn>();
  const remove = (conn: Deno.Conn): void => {
    const state = live.get(conn);
    if (state) state.closed = true;
    live.delete(conn);
    closeQuietly(conn);
  };
  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const [conn, state] of live) {
      if (state.deadline !== 0 && state.deadline <= now) remove(conn);
    }
  }, options.sweepMs);
  return {
    get size() {
      return live.size;
    },
    add: (conn, state) => void live.set(conn, state),
    remove,
    evictOne() {
      // Silent connections first (no complete request yet: a flood of idle
      // connects, however late they were accepted, goes before the clients
      // that asked something), then by deadline.
      let victim: Deno.Conn | undefined;
      let earliest = Infinity;
      let silent = false;
      for (const [conn, state] of live) {
        if (state.deadline === 0) continue;
        const quiet = state.spoke !== true;
        if ((quiet && !silent) || (quiet === silent && state.deadline < earliest)) {
          earliest = state.deadline;
          victim = conn;
          silent = quiet;
        }
      }
      if (!victim) return false;
      remove(victim);
      return true;
    },
    closeIdle() {
      for (const [conn, state] of live) if (state.deadline !== 0) remove(conn);
    },
    closeAll() {
      clearInterval(sweeper);
      for (const conn of [...live.keys()]) remove(conn);
    },
  };
}
