/**
 * Retries of upstream calls: jittered exponential backoff on the failures
 * that are worth retrying (429, 5xx, timeouts, connection errors), always
 * within one overall deadline so a request never hangs.
 */
import { GateError } from "../shared/errors.ts";

/** Options for {@linkcode withRetry}. */
export interface RetryOptions {
  /** Overall deadline for all attempts (ms). */
  deadlineMs: number;
  /** Most attempts in total. */
  maxAttempts?: number;
  /** First backoff (ms); doubles each attempt, with full jitter. */
  baseDelayMs?: number;
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** True for errors that a later attempt may not meet. */
export function isRetryable(err: unknown): boolean {
  if (!(err instanceof GateError)) return false;
  if (err.code === "timeout") return true;
  if (err.code !== "upstream") return false;
  return err.status === 429 || err.status >= 500;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Calls `attempt(remainingMs)` until it succeeds, fails with a non-retryable
 * error, runs out of attempts, or the deadline would pass during the backoff.
 */
export async function withRetry<T>(
  attempt: (remainingMs: number) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? defaultSleep;
  const maxAttempts = options.maxAttempts ?? 4;
  const base = options.baseDelayMs ?? 200;
  const deadline = now() + options.deadlineMs;
  for (let n = 1;; n++) {
    try {
      return await attempt(Math.max(1, deadline - now()));
    } catch (err) {
      if (!isRetryable(err) || n >= maxAttempts) throw err;
      const delay = Math.round(random() * base * 2 ** (n - 1));
      // Not enough time left for a backoff and a useful attempt: give up now.
      if (now() + delay + 100 >= deadline) throw err;
      await sleep(delay);
    }
  }
}
