/**
 * with-prod benchmarks, each subject measured beside its baseline in one run:
 * - the PID-restricted temporary proxy's throughput vs the unrestricted
 *   gcp-metadata-proxy, 10 keep-alive connections (wrk), cached token;
 * - `with-prod -- true` wall time with an instantly approving gate vs a hello
 *   world launched the same way (`deno run` behind a /bin/sh launcher).
 * The "instant" approver polls the gate's admin socket and approves whatever
 * is queued, so the approval wait is a few ms, not a human.
 */
import { type Bench, type BenchResult, percentile } from "./_bench.ts";
import { BIN, hasCommand, run, type Stack, start, startStack, tempDir } from "../tests/_utils.ts";
import { PROD_SA } from "../tests/_utils.ts";

export const WRAP_GATE_TOML: string = [
  `approval_methods = "queue"`,
  `prod_service_account = "${PROD_SA}"`,
  // The benchmark asks for many approvals in a row.
  `max_approvals_per_minute = 1000`,
  `denial_cooldown_seconds = 0`,
].join("\n");
const TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token";
const WRK_SECONDS = 3;

/** Approves every queued request until disposed. */
export function autoApprove(stack: Stack): AsyncDisposable {
  const client = Deno.createHttpClient({
    proxy: { transport: "unix", path: `${stack.home}/run/gcp-gate-admin/admin.sock` },
  });
  let stopped = false;
  const headers = { "x-gcp-gate-protocol": "1" };
  const loop = (async () => {
    while (!stopped) {
      try {
        const res = await fetch("http://gate.invalid/pending", { client, headers });
        const body = await res.json() as { pending?: { id: string }[] };
        for (const p of body.pending ?? []) {
          await (await fetch(`http://gate.invalid/approve?id=${encodeURIComponent(p.id)}`, {
            method: "POST",
            client,
            headers,
          })).body?.cancel();
        }
      } catch { /* the gate is starting or stopping */ }
      await new Promise((r) => setTimeout(r, 3));
    }
  })();
  return {
    [Symbol.asyncDispose]: async () => {
      stopped = true;
      await loop;
      client.close();
    },
  };
}

/** One wrk thread: on two cores the load generator and the server get one each. */
function wrkArgs(hostPort: string): string[] {
  return [
    "-t1",
    "-c10",
    `-d${WRK_SECONDS}s`,
    "-H",
    "Metadata-Flavor: Google",
    `http://${hostPort}${TOKEN_PATH}`,
  ];
}

/** wrk's worst latency in ms (its "Latency avg stdev max" line). */
function maxLatencyMs(out: string): number {
  const m = /Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\b/.exec(out);
  const scale: Record<string, number> = { us: 0.001, ms: 1, s: 1000 };
  return m ? Number(m[1]) * (scale[m[2]!] ?? NaN) : NaN;
}

function requestsPerSecond(out: string): number {
  if (/Non-2xx or 3xx responses/.test(out)) throw new Error(`wrk saw errors:\n${out}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  if (!Number.isFinite(rps)) throw new Error(`cannot parse wrk output:\n${out}`);
  return rps;
}

export const wrapProxyThroughput: Bench = async (): Promise<BenchResult[]> => {
  if (!hasCommand("wrk")) throw new Error("wrk is not installed");
  await using stack = await startStack({ gateToml: WRAP_GATE_TOML });
  await using _approver = autoApprove(stack);
  const env = { ...stack.clientEnv, GCP_GATE_CONFIG: stack.configPath };
  // Warm the dev proxy's cache; with-prod's proxy is warmed by its first token.
  await run("wrk", [
    "-t1",
    "-c1",
    "-d1s",
    "-H",
    "Metadata-Flavor: Google",
    `http://${stack.proxyHostPort}${TOKEN_PATH}`,
  ], { command: "wrk", env });
  const base = await run("wrk", wrkArgs(stack.proxyHostPort!), { command: "wrk", env });
  const baseline = requestsPerSecond(base.stdout);
  await using p = await start("with-prod", [
    "--",
    "sh",
    "-c",
    `exec wrk ${wrkArgs("$GCE_METADATA_HOST").map((a) => `"${a}"`).join(" ")}`,
  ], { env });
  const status = await p.status;
  if (status.code !== 0) throw new Error(`with-prod failed:\n${p.output()}`);
  const subject = requestsPerSecond(p.stdout());
  const ratio = subject / baseline;
  return [{
    name: "wrap.restricted_proxy_rps_vs_proxy",
    detail: `restricted_rps=${subject.toFixed(0)} unrestricted_rps=${
      baseline.toFixed(0)
    } restricted_max_ms=${maxLatencyMs(p.stdout()).toFixed(2)} unrestricted_max_ms=${
      maxLatencyMs(base.stdout).toFixed(2)
    } connections=10 seconds=${WRK_SECONDS}`,
    ratio,
    target: ">=0.9",
    pass: ratio >= 0.9,
  }];
};

const RUNS = 10;

async function timeOnce(cmd: string, args: string[], env: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  const r = await run(cmd, args, { command: cmd, env });
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(`${cmd} exited ${r.code}: ${r.stderr.trim()}`);
  return ms;
}

export const wrapTrueOverhead: Bench = async (): Promise<BenchResult[]> => {
  await using stack = await startStack({ gateToml: WRAP_GATE_TOML, proxy: false });
  await using _approver = autoApprove(stack);
  await using dir = tempDir("gcp-gate-bench-");
  const hello = `${dir.path}/hello.js`;
  Deno.writeTextFileSync(hello, 'console.log("hello");\n');
  const launcher = `${dir.path}/hello`;
  Deno.writeTextFileSync(
    launcher,
    `#!/bin/sh\nset -eu\nexec "${Deno.execPath()}" run --no-config --cached-only --no-prompt "${hello}" "$@"\n`,
    { mode: 0o755 },
  );
  Deno.chmodSync(launcher, 0o755);
  const env = { ...stack.clientEnv, GCP_GATE_CONFIG: stack.configPath };
  const wrap = `${BIN}/with-prod`;
  for (let i = 0; i < 2; i++) {
    await timeOnce(wrap, ["--", "true"], env);
    await timeOnce(launcher, [], env);
  }
  const subject: number[] = [];
  const baseline: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    subject.push(await timeOnce(wrap, ["--", "true"], env));
    baseline.push(await timeOnce(launcher, [], env));
  }
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const ratio = mean(subject) / mean(baseline);
  return [{
    name: "wrap.true_vs_hello",
    detail: `with_prod_mean_ms=${mean(subject).toFixed(1)} with_prod_p50_ms=${
      percentile(subject, 50).toFixed(1)
    } hello_mean_ms=${mean(baseline).toFixed(1)} hello_p50_ms=${
      percentile(baseline, 50).toFixed(1)
    } runs=${RUNS}`,
    ratio,
    target: "<=3",
    pass: ratio <= 3,
  }];
};
