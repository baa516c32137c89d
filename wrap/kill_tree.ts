/**
 * SIGKILL for the wrapped command's whole process tree. Killing only the
 * command's own pid leaves its children running (a shell's `sleep`, a
 * tool's worker) after with-prod has exited: still writing to the terminal,
 * and still holding any prod token they fetched. The escalation is the
 * "make it stop" path, so everything below the command goes with it.
 *
 * The tree is frozen first (SIGSTOP, rescanned until no new process
 * appears), then killed: a stopped process cannot fork, and killing the
 * command first would orphan its children to init, where no scan from the
 * command's pid finds them. A process that already left the tree (a double
 * fork to init) is out of reach; it loses the proxy at teardown.
 */
import { parseStat, type ProcDeps, REAL_PROC } from "./pid_owner.ts";

/** Dependencies of {@linkcode killTree}. */
export interface KillTreeDeps {
  readonly proc: ProcDeps;
  /** Sends `signal` to `pid`; throws when it is gone (ignored). */
  kill(pid: number, signal: Deno.Signal): void;
  /** Defaults to `/proc`. */
  readonly procRoot?: string;
}

export const REAL_KILL_TREE: KillTreeDeps = {
  proc: REAL_PROC,
  kill: (pid, signal) => Deno.kill(pid, signal),
};

/** Rescans while new processes keep appearing; bounded so a fork storm cannot hold us. */
const MAX_ROUNDS = 10;

/** `root` and every process below it, parents before children (one pass over /proc). */
export function processTree(root: number, proc: ProcDeps, procRoot = "/proc"): number[] {
  const children = new Map<number, number[]>();
  for (const name of proc.listDir(procRoot)) {
    if (!/^\d+$/.test(name)) continue;
    const text = proc.readTextFile(`${procRoot}/${name}/stat`);
    const s = text ? parseStat(text) : undefined;
    if (!s) continue;
    const list = children.get(s.ppid) ?? [];
    list.push(Number(name));
    children.set(s.ppid, list);
  }
  const out = [root];
  const seen = new Set(out);
  for (let i = 0; i < out.length; i++) {
    for (const c of children.get(out[i]!) ?? []) {
      if (!seen.has(c)) {
        seen.add(c);
        out.push(c);
      }
    }
  }
  return out;
}

/** Freezes and SIGKILLs `root` and its descendants; returns how many were signalled. */
export function killTree(root: number, deps: KillTreeDeps = REAL_KILL_TREE): number {
  const send = (pid: number, signal: Deno.Signal): void => {
    try {
      deps.kill(pid, signal);
    } catch { /* already gone */ }
  };
  const stopped = new Set<number>();
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const fresh = processTree(root, deps.proc, deps.procRoot).filter((p) => !stopped.has(p));
    if (fresh.length === 0) break;
    for (const pid of fresh) {
      send(pid, "SIGSTOP");
      stopped.add(pid);
    }
  }
  // SIGKILL ends a stopped process too; no SIGCONT needed.
  for (const pid of stopped) send(pid, "SIGKILL");
  return stopped.size;
}
