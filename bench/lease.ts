/**
 * How fast the gate ends a prod session whose with-prod died: `kill -9` of
 * an approved with-prod (no teardown, no DELETE) until the `lease lost`
 * revocation is in the audit log, against the lease's keep-alive period (the
 * backstop bound: a failed keep-alive write ends a lease Deno did not see
 * close). Target: the p90 well under that bound.
 */
import { LEASE_KEEPALIVE_MS } from "../shared/protocol.ts";
import { type Bench, type BenchResult, percentile } from "./_bench.ts";
import { approveNext, baseEnv, QUEUE_PROD_TOML, start, startStack } from "../tests/_utils.ts";

const RUNS = 8;

function leaseLostLines(auditPath: string): number {
  try {
    return (Deno.readTextFileSync(auditPath).match(/"reason":"lease lost"/g) ?? []).length;
  } catch {
    return 0;
  }
}

export const leaseLoss: Bench = async (): Promise<BenchResult[]> => {
  await using stack = await startStack({
    gateToml: `${QUEUE_PROD_TOML}\nmax_approvals_per_minute = 1000`,
    proxy: false,
  });
  const audit = `${stack.home}/.local/state/gcp-gate/audit.log`;
  const env = baseEnv(stack.home, { GCP_GATE_CONFIG: stack.configPath });
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    await using p = await start("with-prod", ["--", "sh", "-c", "echo child=$$; exec sleep 60"], {
      env,
    });
    await approveNext(stack);
    const child = Number((await p.waitFor(/child=(\d+)/))[1]);
    const before = leaseLostLines(audit);
    const t0 = performance.now();
    p.kill("SIGKILL");
    const deadline = t0 + 10_000;
    while (leaseLostLines(audit) === before && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1));
    }
    samples.push(performance.now() - t0);
    try {
      Deno.kill(child, "SIGKILL");
    } catch { /* gone */ }
  }
  const p50 = percentile(samples, 50);
  const p90 = percentile(samples, 90);
  const ratio = p90 / LEASE_KEEPALIVE_MS;
  return [{
    name: "gate.lease_lost_ms_vs_keepalive",
    detail: `p50=${p50.toFixed(1)}ms p90=${
      p90.toFixed(1)
    }ms keepalive=${LEASE_KEEPALIVE_MS}ms runs=${RUNS}`,
    ratio,
    target: "<=0.25",
    pass: ratio <= 0.25,
  }];
};
