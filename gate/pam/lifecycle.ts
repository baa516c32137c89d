/**
 * A grant's life as the gate drives it: reuse the engineer's ACTIVE grant of
 * the entitlement, else create one (idempotent `requestId`), wait while it
 * is APPROVAL_AWAITED / SCHEDULED / ACTIVATING (bounded), and withdraw it
 * (bounded) when it is no longer needed. Every state change is reported to
 * `onState` (audit, log) and every wait to `onProgress`.
 */
import { GateError } from "../../shared/errors.ts";
import { type Grant, JUSTIFICATION_PREFIX, type PamClient } from "./client.ts";

/** States in which a grant may still become ACTIVE. */
export const WAITING_STATES: ReadonlySet<string> = new Set([
  "APPROVAL_AWAITED",
  "SCHEDULED",
  "ACTIVATING",
]);
/** States after which a grant gives no access (and cannot be withdrawn). */
export const ENDED_STATES: ReadonlySet<string> = new Set([
  "DENIED",
  "ACTIVATION_FAILED",
  "EXPIRED",
  "REVOKING",
  "REVOKED",
  "ENDED",
  "WITHDRAWING",
  "WITHDRAWN",
]);

/** Dependencies of {@linkcode createGrantLifecycle}. */
export interface GrantLifecycleDeps {
  client: PamClient;
  /** The engineer's ADC access token. */
  source: () => Promise<string>;
  now?: () => number;
  /** Longest pause between two reads of a waiting grant (ms). */
  pollMs?: number;
  /** A grant was seen in a new state (`previous` undefined: first sight). */
  onState?: (grant: Grant, previous: string | undefined) => void;
}

/** What {@linkcode GrantLifecycle.acquire} needs. */
export interface AcquireOptions {
  readonly entitlement: string;
  readonly durationSeconds: number;
  readonly justification: string;
  /** Idempotency key of `grants.create`: the same for every retry of one request. */
  readonly requestId: string;
  readonly requestReason: string;
  /** Longest wait for ACTIVE, creation included (ms). */
  readonly waitMs: number;
  readonly signal: AbortSignal;
  /** What the request waits for, in words for the engineer (once per state). */
  readonly onProgress?: ((message: string) => void) | undefined;
}

/** An ACTIVE grant; `created`: this gate made it (so it withdraws it). */
export interface AcquiredGrant {
  readonly grant: Grant;
  readonly created: boolean;
}

export interface GrantLifecycle {
  acquire(o: AcquireOptions): Promise<AcquiredGrant>;
  /** Reads the grant now. */
  check(name: string, requestReason: string): Promise<Grant>;
  /** Withdraws and waits for the operation, within `timeoutMs`; resolves with what happened. */
  withdraw(name: string, requestReason: string, timeoutMs: number): Promise<string>;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(done, ms);
    function done(): void {
      signal?.removeEventListener("abort", abort);
      resolve();
    }
    function abort(): void {
      clearTimeout(t);
      reject(signal?.reason ?? new Error("aborted"));
    }
    if (signal?.aborted) return abort();
    signal?.addEventListener("abort", abort, { once: true });
  });
}

/** Why the request waits, in words the engineer can act on. */
export function progressMessage(g: Grant): string {
  switch (g.state) {
    case "APPROVAL_AWAITED":
      return `waiting for a teammate to approve grant ${g.name}; ask them to approve it in the console (Privileged Access Manager → Approve grants)`;
    case "SCHEDULED":
      return `grant ${g.name} is scheduled; waiting for it to activate`;
    default:
      return `grant ${g.name} is activating; waiting for Google to apply its roles`;
  }
}

/** The error a grant that cannot become ACTIVE ends the request with. */
export function endedError(g: Grant): GateError {
  switch (g.state) {
    case "DENIED":
      return new GateError(
        "denied",
        `grant ${g.name} was DENIED by an approver; ask them why, then run the command again`,
      );
    case "EXPIRED":
      return new GateError(
        "denied",
        `grant ${g.name} EXPIRED before anyone approved it; ask a teammate to approve the next request sooner`,
      );
    case "ACTIVATION_FAILED":
      return new GateError(
        "upstream",
        `Privileged Access Manager could not activate grant ${g.name} (ACTIVATION_FAILED); see the grant in the console, then try again`,
      );
    default:
      return new GateError(
        "grant_ended",
        `grant ${g.name} is ${g.state}: its access has ended; run the command again for a new grant`,
      );
  }
}

/** What the lifecycle's steps share: the deps, the clock, each grant's last state seen. */
interface LifecycleState {
  readonly deps: GrantLifecycleDeps;
  readonly now: () => number;
  readonly pollMs: number;
  readonly seen: Map<string, string>;
}

/** Reports a grant's state change (once per change). */
function observe(state: LifecycleState, g: Grant): Grant {
  const { seen } = state;
  const previous = seen.get(g.name);
  if (previous !== g.state) {
    // Bounded: a gate holds few grants; forget the oldest beyond 256.
    if (seen.size >= 256) seen.delete(seen.keys().next().value!);
    seen.set(g.name, g.state);
    state.deps.onState?.(g, previous);
  }
  return g;
}

async function findOpen(
  state: LifecycleState,
  o: AcquireOptions,
  src: string,
): Promise<Grant | undefined> {
  const mine = await state.deps.client.searchOwnGrants(src, o.entitlement, {
    requestReason: o.requestReason,
    signal: o.signal,
  });
  return mine.find((g) => g.state === "ACTIVE") ??
    mine.find((g) => WAITING_STATES.has(g.state));
}

async function withdraw(
  state: LifecycleState,
  name: string,
  opts: { requestReason: string; timeoutMs: number },
): Promise<string> {
  const { deps, now } = state;
  const { requestReason, timeoutMs } = opts;
  const deadline = now() + timeoutMs;
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const src = await deps.source();
    const op = await deps.client.withdrawGrant(src, name, { requestReason, signal });
    while (op !== undefined) {
      if (await deps.client.operationDone(src, op, { requestReason, signal })) break;
      if (now() + 250 >= deadline) return "withdrawal requested; not confirmed in time";
      await sleep(250, signal);
    }
    const g = await deps.client.getGrant(src, name, { requestReason, signal }).catch(() =>
      undefined
    );
    if (g) observe(state, g);
    return "withdrawn";
  } catch (err) {
    if (err instanceof GateError && err.status === 409) return "already ended";
    throw err;
  }
}

/** The caller's open grant, or a new one (another may appear meanwhile: then that one). */
async function openOrCreate(
  state: LifecycleState,
  o: AcquireOptions,
  src: string,
): Promise<{ g: Grant; created: boolean }> {
  const existing = await findOpen(state, o, src);
  if (existing !== undefined) return { g: existing, created: false };
  try {
    const g = await state.deps.client.createGrant(src, o.entitlement, {
      requestId: o.requestId,
      durationSeconds: o.durationSeconds,
      justification: o.justification,
    }, { requestReason: o.requestReason, signal: o.signal });
    return { g, created: true };
  } catch (err) {
    // PAM allows one open grant per entitlement and requester: another
    // request (a second with-prod, the console) made one meanwhile.
    if (!(err instanceof GateError && err.status === 409)) throw err;
    const g = await findOpen(state, o, src);
    if (g === undefined) throw err;
    return { g, created: false };
  }
}

/** Polls until the grant is ACTIVE; withdraws one we created if we stop waiting. */
async function waitActive(
  state: LifecycleState,
  first: Grant,
  opts: { o: AcquireOptions; src: string; created: boolean; deadline: number },
): Promise<Grant> {
  const { deps, now, pollMs } = state;
  const { o, created } = opts;
  let g = first;
  let lastProgress = "";
  let polls = 0;
  try {
    while (g.state !== "ACTIVE") {
      if (!WAITING_STATES.has(g.state)) throw endedError(g);
      if (g.state !== lastProgress) {
        lastProgress = g.state;
        o.onProgress?.(progressMessage(g));
      }
      if (now() + pollMs > opts.deadline) {
        throw new GateError(
          "timeout",
          `grant ${g.name} is still ${g.state} after ${
            Math.round(o.waitMs / 1000)
          } s (pam_wait_seconds); ${
            created ? "it was withdrawn" : "it was left as it is"
          } — ask a teammate to approve it first, or raise pam_wait_seconds`,
        );
      }
      // Quick first looks (activation often takes seconds), then every pollMs.
      await sleep(Math.min(pollMs, 500 * 1.5 ** polls++), o.signal);
      g = observe(
        state,
        await deps.client.getGrant(opts.src, g.name, {
          requestReason: o.requestReason,
          signal: o.signal,
        }),
      );
    }
    return g;
  } catch (err) {
    // Nobody will use a grant we asked for and stopped waiting for.
    if (created && !ENDED_STATES.has(g.state)) {
      await withdraw(state, g.name, { requestReason: o.requestReason, timeoutMs: 5000 })
        .catch(() => {});
    }
    if (o.signal.aborted && !(err instanceof GateError)) {
      throw new GateError(
        "timeout",
        `the request ended while grant ${g.name} was ${g.state} (the caller left or the gate is stopping)${
          created ? "; it was withdrawn" : ""
        }`,
        { status: 503 },
      );
    }
    throw err;
  }
}

/** Creates the lifecycle driver. */
export function createGrantLifecycle(deps: GrantLifecycleDeps): GrantLifecycle {
  const state: LifecycleState = {
    deps,
    now: deps.now ?? Date.now,
    pollMs: deps.pollMs ?? 5000,
    seen: new Map(),
  };
  return {
    async acquire(o) {
      const deadline = state.now() + o.waitMs;
      const src = await deps.source();
      const { g, created } = await openOrCreate(state, o, src);
      const ours = created || (g.justification ?? "").startsWith(JUSTIFICATION_PREFIX);
      observe(state, g);
      const active = await waitActive(state, g, { o, src, created, deadline });
      return { grant: active, created: ours };
    },
    async check(name, requestReason) {
      const src = await deps.source();
      return observe(state, await deps.client.getGrant(src, name, { requestReason }));
    },
    withdraw: (name, requestReason, timeoutMs) =>
      withdraw(state, name, { requestReason, timeoutMs }),
  };
}
