/**
 * Fairness across the servers that share this thread (the gate's profile
 * sockets and its admin socket): each server gets about
 * {@linkcode YIELD_AFTER_MS} of the thread per turn of the event loop, and
 * its connections wait for the next turn once that is spent.
 *
 * Why per server, and checked before every request: requests already
 * buffered are served back to back, and a read or write that completes at
 * once never returns to the event loop, so one pipelining client could hold
 * the only JavaScript thread. A single budget shared by every connection was
 * not enough: a connection that had waited for its turn then served one more
 * request unchecked, so one container with 250 pipelining connections made
 * each turn 250 requests long (another profile's cached /token p99 550 ms),
 * and the victims' own connections were made to wait on the flooder's
 * budget. Now a flooding socket spends its own budget only, and a
 * connection that waited checks again (the timers run in order, so the
 * flooder's connections take turns among themselves).
 */

/** A server's share of the thread per turn of the event loop, ms. */
export const YIELD_AFTER_MS = 2;

/** What the connection loop asks of a server's budget. */
export interface TurnBudget {
  /** undefined: serve now; else wait for the promise, then ask again. */
  check(): Promise<void> | undefined;
}

/** One server's budget: armed by its first request in a turn, reset by a timer when the loop turns. */
export class Turns implements TurnBudget {
  #armedAt = -1;
  readonly #reset = (): void => {
    this.#armedAt = -1;
  };

  /** undefined: serve now; else wait for the promise, then ask again. */
  check(): Promise<void> | undefined {
    const now = performance.now();
    if (this.#armedAt < 0) {
      this.#armedAt = now;
      setTimeout(this.#reset, 0);
      return undefined;
    }
    if (now - this.#armedAt < YIELD_AFTER_MS) return undefined;
    return new Promise((r) => setTimeout(r, 0));
  }
}
