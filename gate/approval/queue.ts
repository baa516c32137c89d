/**
 * The approval queue: for a headless gate (no display, no terminal) a request
 * waits here until a human decides it over the admin socket
 * (`gcp-gate pending`, `approve <id>`, `deny <id>`) or it expires. The admin
 * socket is a separate socket that is never mounted into containers, so only
 * the host user can decide.
 */
import type { Logger } from "../../shared/log.ts";
import { type ApprovalStep, cancelled } from "./method.ts";
import type { ApprovalRequest } from "./types.ts";

/** A waiting request as the admin API lists it. */
export interface PendingApproval {
  readonly request: ApprovalRequest;
  readonly createdAt: number;
  readonly expiresAt: number;
}

/** The queue, as the admin server sees it. */
export interface ApprovalQueue {
  readonly step: ApprovalStep;
  /** Waiting requests, oldest first. */
  list(): PendingApproval[];
  /** Decides request `id`; false when no such request is waiting. */
  decide(id: string, approve: boolean): boolean;
}

/** Options for {@linkcode createApprovalQueue}. */
export interface ApprovalQueueOptions {
  timeoutSeconds: number;
  log: Logger;
  now?: () => number;
}

/** Creates an empty queue. */
export function createApprovalQueue(options: ApprovalQueueOptions): ApprovalQueue {
  const now = options.now ?? Date.now;
  const entries = new Map<
    string,
    PendingApproval & { settle: (approved: boolean) => void }
  >();

  const step: ApprovalStep = {
    name: "queue",
    ask(req, ctx) {
      if (entries.has(req.id)) {
        return Promise.resolve({
          kind: "unavailable",
          detail: `a request with id ${req.id} is already queued`,
        });
      }
      const createdAt = now();
      const ms = options.timeoutSeconds * 1000;
      ctx.setDeadline(createdAt + ms);
      return new Promise((resolve) => {
        const finish = (outcome: Parameters<typeof resolve>[0]): void => {
          clearTimeout(timer);
          ctx.signal.removeEventListener("abort", onAbort);
          // Dropped from the queue before anyone hears the outcome: a late
          // `approve` must find nothing rather than approve a finished request.
          entries.delete(req.id);
          resolve(outcome);
        };
        const onAbort = (): void => {
          options.log.info(`request ${req.id} withdrawn: the asking client disconnected`);
          finish(cancelled());
        };
        const timer = setTimeout(() => {
          options.log.info(`request ${req.id} expired in the approval queue`);
          finish({
            kind: "denied",
            detail: `nobody decided within ${options.timeoutSeconds} s in the approval queue`,
          });
        }, ms);
        entries.set(req.id, {
          request: req,
          createdAt,
          expiresAt: createdAt + ms,
          settle: (approved) =>
            finish(
              approved
                ? { kind: "approved", detail: "approved with gcp-gate approve" }
                : { kind: "denied", detail: "denied with gcp-gate deny" },
            ),
        });
        ctx.signal.addEventListener("abort", onAbort, { once: true });
        if (ctx.signal.aborted) onAbort();
        options.log.warn(
          `prod request ${req.id} is waiting for approval for ${options.timeoutSeconds} s: run 'gcp-gate pending', then 'gcp-gate approve ${req.id}' or 'gcp-gate deny ${req.id}'`,
        );
      });
    },
  };

  return {
    step,
    list: () =>
      [...entries.values()]
        .map(({ request, createdAt, expiresAt }) => ({ request, createdAt, expiresAt }))
        .sort((a, b) => a.createdAt - b.createdAt),
    decide(id, approve) {
      const entry = entries.get(id);
      if (!entry) return false;
      entry.settle(approve);
      return true;
    },
  };
}
