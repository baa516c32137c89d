/**
 * Single flight: concurrent callers asking for the same key share one
 * upstream call. A caller that gives up (its client disconnected) stops
 * waiting; the shared call keeps going for everyone else.
 */

/** Shares one in-flight promise per key. */
export interface SingleFlight<V> {
  /** Runs `start` unless a call for `key` is already in flight; waits for it. */
  run(key: string, start: () => Promise<V>, signal?: AbortSignal): Promise<V>;
  /** True while a call for `key` is in flight. */
  has(key: string): boolean;
  /** Keys with a call in flight (for tests and metrics). */
  readonly size: number;
}

/** Creates a {@linkcode SingleFlight}. */
export function createSingleFlight<V>(): SingleFlight<V> {
  const inflight = new Map<string, Promise<V>>();
  return {
    run(key, start, signal) {
      let p = inflight.get(key);
      if (!p) {
        p = start().finally(() => inflight.delete(key));
        inflight.set(key, p);
      }
      return abortable(p, signal);
    },
    has(key) {
      return inflight.has(key);
    },
    get size() {
      return inflight.size;
    },
  };
}

/**
 * Waits for `promise` unless `signal` aborts first. Only the wait is
 * cancelled: the promise itself (a shared mint) is left to finish.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    // Keep the shared promise from reporting an unhandled rejection.
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
