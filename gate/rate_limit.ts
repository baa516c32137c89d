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

/** The limits a reload may change. */
export type ApprovalLimits = Pick<ApprovalRateLimiterOptions, "cooldownSeconds" | "maxPerMinute">;

export interface ApprovalRateLimiter {
  /** Admits request `id` or throws GateError `rate_limited`. */
  acquire(id: string): ApprovalPermit;
  /**
   * Applies new limits (a config reload) to the state so far: the pending
   * request, the running cooldown and the requests of the last minute stay.
   * A running cooldown ends at the later of its current end and its start
   * plus the new length: a longer cooldown extends it, a shorter one never
   * cuts it short (else a reload the agent talks the user into would let a
   * denied request be retried at once). A lower per-minute cap counts the
   * requests already admitted in the window.
   */
  reconfigure(limits: ApprovalLimits): void;
}

const WINDOW_MS = 60_000;
/** Retry hint while a pending request has no known deadline. */
const DEFAULT_RETRY_SECONDS = 5;

function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** The refusal while another request waits for a human. */
function pendingRefusal(
  pending: { id: string; since: number; deadline: number | undefined },
  t: number,
): GateError {
  const retry = pending.deadline !== undefined
    ? seconds(pending.deadline - t)
    : DEFAULT_RETRY_SECONDS;
  // Another process may have sent a look-alike of this caller's request
  // first: say so, so the human denies the one they did not make.
  return new GateError(
    "rate_limited",
    `an approval is already pending (request ${pending.id}, asked ${
      Math.floor((t - pending.since) / 1000)
    } s ago); if you did not make it, deny it on the host (gcp-gate deny ${pending.id}, or Deny in the dialog) — otherwise answer it, or retry in ${retry} s`,
    { retryAfterSeconds: retry },
  );
}

/** Creates the limiter the approval chain consults before asking a human. */
export function createApprovalRateLimiter(
  options: ApprovalRateLimiterOptions,
): ApprovalRateLimiter {
  const now = options.now ?? Date.now;
  let limits: ApprovalLimits = {
    cooldownSeconds: options.cooldownSeconds,
    maxPerMinute: options.maxPerMinute,
  };
  let pending: { id: string; since: number; deadline: number | undefined } | undefined;
  let cooldownUntil = 0;
  /** When the running cooldown began (the denial or cancel), for a reload to re-measure it. */
  let cooldownFrom = 0;
  let cooldownAfter: "denied" | "cancelled" = "denied";
  const admitted: number[] = [];

  return {
    acquire(id) {
      const t = now();
      if (pending) throw pendingRefusal(pending, t);
      if (t < cooldownUntil) {
        const retry = seconds(cooldownUntil - t);
        // The length of this cooldown, which a reload may have made longer than the config's.
        const length = Math.round((cooldownUntil - cooldownFrom) / 1000);
        throw new GateError(
          "rate_limited",
          cooldownAfter === "denied"
            ? `the last prod request was denied; new requests are refused for ${length} s after a denial — retry in ${retry} s`
            : `the last prod request was withdrawn before a decision; new requests are refused for ${length} s after that — retry in ${retry} s`,
          { retryAfterSeconds: retry },
        );
      }
      while (admitted.length > 0 && (admitted[0] ?? 0) <= t - WINDOW_MS) admitted.shift();
      if (admitted.length >= limits.maxPerMinute) {
        // With a cap lowered by a reload, wait until enough of the window has passed.
        const oldest = admitted[admitted.length - Math.max(1, limits.maxPerMinute)] ?? t;
        const retry = seconds(oldest + WINDOW_MS - t);
        throw new GateError(
          "rate_limited",
          `too many prod requests: at most ${limits.maxPerMinute} per minute (max_approvals_per_minute) — retry in ${retry} s`,
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
            cooldownFrom = now();
            cooldownUntil = cooldownFrom + limits.cooldownSeconds * 1000;
            cooldownAfter = outcome;
          }
        },
      };
    },
    reconfigure(next) {
      limits = { cooldownSeconds: next.cooldownSeconds, maxPerMinute: next.maxPerMinute };
      if (cooldownUntil > now()) {
        cooldownUntil = Math.max(cooldownUntil, cooldownFrom + next.cooldownSeconds * 1000);
      }
    },
  };
}
