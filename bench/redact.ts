/**
 * Redaction of a prod request's command on hostile input: the worst shape per
 * pattern (shared/testdata/adversarial_argv.ts), filling a 64 KiB
 * `POST /session` body, against the same body made of an ordinary command.
 * Before the patterns were made linear one such body took ~4.4 s.
 */
import type { BenchResult } from "./_bench.ts";
import { redactArgv } from "../shared/argv_redact.ts";
import { ADVERSARIAL } from "../shared/testdata/adversarial_argv.ts";

const BODY_CHARS = 62_000;
const ROUNDS = 20;

/** Median ms of `fn` over a few rounds (after one warm-up). */
function medianMs(fn: () => void): number {
  fn();
  const samples: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t = performance.now();
    fn();
    samples.push(performance.now() - t);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

/** One argument of the whole body, and the body as 2000-character arguments. */
function bodies(make: (n: number) => string): string[][] {
  const capped = Array.from({ length: BODY_CHARS / 2000 }, () => make(2000).slice(0, 2000));
  return [["x", make(BODY_CHARS)], ["x", ...capped]];
}

export function benchRedaction(): Promise<BenchResult[]> {
  const ordinary = Array.from(
    { length: BODY_CHARS / 40 },
    (_, i) => `--flag-${i}=gs://bucket/path/to/object-${i}`.slice(0, 40),
  );
  const baseline = medianMs(() => redactArgv(ordinary));
  let worst = 0;
  let worstShape = "";
  for (const [shape, make] of Object.entries(ADVERSARIAL)) {
    for (const argv of bodies(make)) {
      const ms = medianMs(() => redactArgv(argv));
      if (ms > worst) [worst, worstShape] = [ms, shape];
    }
  }
  const target = 20;
  return Promise.resolve([{
    name: "redact.hostile_64k_body",
    detail: `worst_ms=${worst.toFixed(2)} worst_shape=${JSON.stringify(worstShape)} ordinary_ms=${
      baseline.toFixed(2)
    }`,
    ratio: worst / baseline,
    target: `worst<=${target}ms`,
    pass: worst <= target,
  }]);
}
