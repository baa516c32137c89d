/**
 * Runs the wrapped command to its end: forwards SIGTERM, SIGHUP and SIGQUIT
 * (and SIGINT when stdin is not a terminal), escalates to SIGKILL on a second
 * signal or 5 s after the first, and returns the command's exit code (128+n
 * when a signal killed it).
 *
 * On a terminal, Ctrl-C already reaches the command through the foreground
 * process group; forwarding it too would deliver it twice (a REPL would see
 * two interrupts). Such a SIGINT is neither forwarded nor a reason to kill:
 * the command decides what Ctrl-C means.
 *
 * The SIGKILL goes to the command's whole process tree (see kill_tree.ts):
 * children it started must not outlive with-prod.
 */
import { killTree } from "./kill_tree.ts";

/** The child as the supervisor sees it. */
export interface SupervisedChild {
  readonly pid: number;
  kill(signal: Deno.Signal): void;
  readonly status: Promise<Deno.CommandStatus>;
}

/** Dependencies of {@linkcode supervise}. */
export interface SuperviseDeps {
  addSignalListener(signal: Deno.Signal, handler: () => void): void;
  removeSignalListener(signal: Deno.Signal, handler: () => void): void;
  /** Runs `fn` after `ms`; returns a function that cancels it. */
  schedule(fn: () => void, ms: number): () => void;
  /** SIGKILLs `pid` and every process below it. */
  killTree(pid: number): void;
}

/** Options for {@linkcode supervise}. */
export interface SuperviseOptions {
  readonly stdinIsTerminal: boolean;
  /** Grace after the first forwarded signal before SIGKILL (default 5000 ms). */
  readonly killAfterMs?: number;
}

export const FORWARDED_SIGNALS: readonly Deno.Signal[] = ["SIGTERM", "SIGHUP", "SIGQUIT", "SIGINT"];

const SIGNAL_NUMBERS: Readonly<Partial<Record<Deno.Signal, number>>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGTERM: 15,
};

/** 128 + the signal's number (the shell's convention), e.g. 130 for SIGINT. */
export function exitCodeForSignal(signal: Deno.Signal): number {
  return 128 + (SIGNAL_NUMBERS[signal] ?? 0);
}

/** The exit code a shell would report for `status`. */
export function exitCodeOf(status: Deno.CommandStatus): number {
  if (status.signal !== null) {
    const n = SIGNAL_NUMBERS[status.signal];
    if (n !== undefined) return 128 + n;
  }
  // Deno already reports a signalled child's code as 128+n.
  return status.code;
}

export const REAL_SIGNALS: SuperviseDeps = {
  addSignalListener: (s, h) => Deno.addSignalListener(s, h),
  removeSignalListener: (s, h) => Deno.removeSignalListener(s, h),
  schedule: (fn, ms) => {
    const id = setTimeout(fn, ms);
    return () => clearTimeout(id);
  },
  killTree: (pid) => void killTree(pid),
};

/** Waits for `child`, relaying signals; resolves with its exit code. */
export async function supervise(
  child: SupervisedChild,
  options: SuperviseOptions,
  deps: SuperviseDeps = REAL_SIGNALS,
): Promise<number> {
  let received = 0;
  let cancelKill: (() => void) | undefined;
  let exited = false;
  const send = (signal: Deno.Signal): void => {
    if (exited) return;
    try {
      child.kill(signal);
    } catch { /* it has just exited */ }
  };
  const kill = (): void => {
    if (exited) return;
    // The tree first, while the command still holds its children together.
    deps.killTree(child.pid);
    send("SIGKILL");
  };
  const handlers = new Map<Deno.Signal, () => void>();
  for (const signal of FORWARDED_SIGNALS) {
    const handler = (): void => {
      if (signal === "SIGINT" && options.stdinIsTerminal) return;
      received++;
      if (received > 1) {
        kill();
        return;
      }
      send(signal);
      cancelKill = deps.schedule(kill, options.killAfterMs ?? 5000);
    };
    handlers.set(signal, handler);
    deps.addSignalListener(signal, handler);
  }
  try {
    const status = await child.status;
    exited = true;
    return exitCodeOf(status);
  } finally {
    cancelKill?.();
    for (const [signal, handler] of handlers) deps.removeSignalListener(signal, handler);
  }
}
