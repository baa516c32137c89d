/**
 * gcp-kube-token runs on every kubectl call: its wall time per invocation
 * against a warm proxy must stay ≤ 1.5× a hello world launched the same way
 * (the very launcher scripts/build.ts generates for gcp-kube-token, same
 * permission flags, with a one-line `console.log` as its lib). Both are run
 * alternately in one loop so machine noise hits both equally.
 */
import { type Bench, type BenchResult, percentile } from "./_bench.ts";
import { BIN, run, startStack, tempDir } from "../tests/_utils.ts";
import { launcherScript } from "../scripts/build.ts";

const RUNS = 30;

async function timeOnce(cmd: string, env: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  const r = await run(cmd, [], { command: cmd, env });
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(`${cmd} exited ${r.code}: ${r.stderr.trim()}`);
  return ms;
}

export const kubeTokenStartup: Bench = async (): Promise<BenchResult[]> => {
  await using stack = await startStack();
  await using dir = tempDir("gcp-gate-bench-");
  Deno.mkdirSync(`${dir.path}/bin`);
  Deno.mkdirSync(`${dir.path}/lib`);
  Deno.writeTextFileSync(`${dir.path}/lib/gcp-kube-token.js`, 'console.log("hello");\n');
  const launcher = `${dir.path}/bin/gcp-kube-token`;
  Deno.writeTextFileSync(launcher, launcherScript("gcp-kube-token", Deno.execPath()), {
    mode: 0o755,
  });
  Deno.chmodSync(launcher, 0o755);
  const token = `${BIN}/gcp-kube-token`;
  const env = stack.clientEnv;
  // Warm up: the proxy's token cache, the OS page cache, Deno's code cache.
  for (let i = 0; i < 3; i++) {
    await timeOnce(token, env);
    await timeOnce(launcher, env);
  }
  const subject: number[] = [];
  const baseline: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    subject.push(await timeOnce(token, env));
    baseline.push(await timeOnce(launcher, env));
  }
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const ratio = mean(subject) / mean(baseline);
  const bundleKb = Deno.statSync(`${BIN}/../lib/gcp-kube-token.js`).size / 1024;
  return [{
    name: "kube.token_invocation_vs_hello",
    detail: `token_mean_ms=${mean(subject).toFixed(1)} token_p50_ms=${
      percentile(subject, 50).toFixed(1)
    } hello_mean_ms=${mean(baseline).toFixed(1)} hello_p50_ms=${
      percentile(baseline, 50).toFixed(1)
    } runs=${RUNS} bundle_kb=${bundleKb.toFixed(1)}`,
    ratio,
    target: "<=1.5",
    pass: ratio <= 1.5,
  }];
};
