/**
 * Rate limits on prod approval requests. A human's attention is the scarce
 * resource here: an agent in a container must not be able to flood the
 * screen with dialogs until someone clicks Allow out of fatigue. Three rules:
 * one pending approval at a time, a cooldown after a denial or a withdrawn
 * request, and at most N admitted requests per sliding minute. Refusals are GateError `rate_limited`
 * (429) carrying when to retry.
 */
import { GateError } from "../shared/errors.ts";

/** Options for {@linkcode createApprovalRateLimiter}. */
export interface ApprovalRateLimiterOptions {
  /** After a denial, refuse new requests for this long. */
  cooldownSeconds: number;
  /** Requests admitted per sliding 60 s window. */
  maxPerMinute: number;
  /** Clock (ms); injected in unit tests. */
  now?: () => number;
}

/**
 * How an admitted request ended. A denial and a cancel (the client went away
 * before a decision) both start the cooldown: without it, an agent could ask
 * and withdraw over and over, flashing a dialog every few seconds.
 */
export type ApprovalOutcome = "approved" | "denied" | "cancelled";

/** One admitted request; release it exactly once. */
export interface ApprovalPermit {
  /** When the current approval step will have timed out at the latest (ms), for Retry-After. */
  setDeadline(atMs: number): void;
  release(outcome: ApprovalOutcome): void;
}

export interface ApprovalRateLimiter {
  /** Admits request `id` or throws GateError `rate_limited`. */
  acquire(id: string): ApprovalPermit;
}

const WINDOW_MS = 60_000;
/** Retry hint while a pending request has no known deadline. */
const DEFAULT_RETRY_SECONDS = 5;

function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** Creates the limiter the approval chain consults before asking a human. */
export function createApprovalRateLimiter(
  options: ApprovalRateLimiterOptions,
): ApprovalRateLimiter {
  const now = options.now ?? Date.now;
  let pending: { id: string; since: number; deadline: number | undefined } | undefined;
  let cooldownUntil = 0;
  let cooldownAfter: "denied" | "cancelled" = "denied";
  const admitted: number[] = [];

  return {
    acquire(id) {
      const t = now();
      if (pending) {
        const retry = pending.deadline !== undefined
          ? seconds(pending.deadline - t)
          : DEFAULT_RETRY_SECONDS;
        // Another process may have sent a look-alike of this caller's request
        // first: say so, so the human denies the one they did not make.
        throw new GateError(
          "rate_limited",
          `an approval is already pending (request ${pending.id}, asked ${
            Math.floor((t - pending.since) / 1000)
          } s ago); if you did not make it, deny it on the host (gcp-gate deny ${pending.id}, or Deny in the dialog) — otherwise answer it, or retry in ${retry} s`,
          { retryAfterSeconds: retry },
        );
      }
      if (t < cooldownUntil) {
        const retry = seconds(cooldownUntil - t);
        throw new GateError(
          "rate_limited",
          cooldownAfter === "denied"
            ? `the last prod request was denied; new requests are refused for ${options.cooldownSeconds} s after a denial — retry in ${retry} s`
            : `the last prod request was withdrawn before a decision; new requests are refused for ${options.cooldownSeconds} s after that — retry in ${retry} s`,
          { retryAfterSeconds: retry },
        );
      }
      while (admitted.length > 0 && (admitted[0] ?? 0) <= t - WINDOW_MS) admitted.shift();
      if (admitted.length >= options.maxPerMinute) {
        const retry = seconds((admitted[0] ?? t) + WINDOW_MS - t);
        throw new GateError(
          "rate_limited",
          `too many prod requests: at most ${options.maxPerMinute} per minute (max_approvals_per_minute) — retry in ${retry} s`,
          { retryAfterSeconds: retry },
        );
      }
      admitted.push(t);
      const mine = { id, since: t, deadline: undefined as number | undefined };
      pending = mine;
      let released = false;
      return {
        setDeadline(atMs) {
          if (!released) mine.deadline = atMs;
        },
        release(outcome) {
          if (released) return;
          released = true;
          if (pending === mine) pending = undefined;
          if (outcome !== "approved") {
            cooldownUntil = now() + options.cooldownSeconds * 1000;
            cooldownAfter = outcome;
          }
        },
      };
    },
  };
}
