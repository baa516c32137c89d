/** Shared types and helpers for benchmarks. */

/** One measured comparison. */
export interface BenchResult {
  /** e.g. `proxy.cached_token_rps`. */
  name: string;
  /** Measured values, `key=value` pairs. */
  detail: string;
  /** Subject vs baseline (higher is better unless the target says `<=`). */
  ratio: number;
  /** The target as text, e.g. `>=0.8`. */
  target: string;
  pass: boolean;
}

export type Bench = () => Promise<BenchResult[]>;

/** Percentile of sorted-or-not samples. */
export function percentile(samples: number[], p: number): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

/** RSS in MB of a live process (from /proc; benchmarks run with -A). */
export function rssMb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}
