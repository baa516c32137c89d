/** What each approval method (dialog, terminal, queue) looks like to the chain. */
import type { ApprovalRequest } from "./types.ts";

/** How one method ended. `unavailable` is never a denial: the chain tries the next method. */
export type MethodOutcome =
  | { readonly kind: "approved"; readonly detail: string }
  | { readonly kind: "denied"; readonly detail: string }
  | { readonly kind: "cancelled"; readonly detail: string }
  | { readonly kind: "unavailable"; readonly detail: string };

/** What the chain gives a method for one request. */
export interface MethodContext {
  /** Aborts when the asking client disconnects: close the dialog, drop the entry. */
  readonly signal: AbortSignal;
  /** Tells the rate limiter when this step will have ended at the latest (ms). */
  setDeadline(atMs: number): void;
}

/** One way of asking a human. */
export interface ApprovalStep {
  readonly name: "dialog" | "terminal" | "queue";
  ask(req: ApprovalRequest, ctx: MethodContext): Promise<MethodOutcome>;
}

/** The outcome for a request whose client went away. */
export function cancelled(): MethodOutcome {
  return { kind: "cancelled", detail: "the asking client disconnected" };
}
