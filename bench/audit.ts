/**
 * `gcp-gate audit verify` on an untouched 10,000-line log written by the
 * gate's own writer (rotated files): the verification (read, parse, hash,
 * walk the chain) must take under 1 s. Measured in-process (verifyLog), and
 * through the built launcher against its `--version` (launcher startup only,
 * run alternately), so the command's own cost is visible apart from Deno's
 * startup on a busy machine.
 */
import { type Bench, type BenchResult, percentile } from "./_bench.ts";
import { baseEnv, run, tempDir } from "../tests/_utils.ts";
import { createAuditLog } from "../gate/audit.ts";
import { createLogger } from "../shared/log.ts";
import { verifyLog } from "../gate/audit_verify.ts";

const LINES = 10_000;
const RUNS = 7;

async function writeLog(path: string): Promise<void> {
  const audit = createAuditLog({
    path,
    maxBytes: 1024 * 1024,
    keep: 9,
    log: createLogger({ write: () => {} }),
    summaryMs: 1 << 30,
  });
  for (let i = 0; i < LINES; i++) {
    if (i % 25 === 0) {
      audit.record({
        endpoint: "/session",
        level: "prod",
        result: "granted",
        email: "engineer@example.com",
        project: "my-prod",
        session: "abcd1234",
        command: ["gcloud", "sql", "connect", `db-${i}`, "--user=admin"],
        approval: "dialog: approved",
      });
    } else {
      audit.record({
        endpoint: "/token",
        level: "dev",
        result: "granted",
        email: "engineer@example.com",
        scopes: ["https://www.googleapis.com/auth/cloud-platform"],
        ttl_seconds: 3600,
      });
    }
    if (i % 500 === 499) await audit.flush();
  }
  await audit.close();
}

async function timeRun(args: string[], env: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  const r = await run("gcp-gate", args, { env });
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(`gcp-gate ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return ms;
}

export const auditVerify: Bench = async (): Promise<BenchResult[]> => {
  await using dir = tempDir("gcp-gate-bench-");
  const path = `${dir.path}/state/audit.log`;
  await writeLog(path);
  const config = `${dir.path}/gate.toml`;
  Deno.writeTextFileSync(config, `audit_log = "${path}"\n`);
  const env = baseEnv(dir.path);
  const verify = ["audit", "verify", "--config", config];
  await timeRun(verify, env); // warm: page cache, code cache
  const subject: number[] = [];
  const baseline: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    subject.push(await timeRun(verify, env));
    baseline.push(await timeRun(["--version"], env));
  }
  const inProcess: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const r = verifyLog(path);
    inProcess.push(performance.now() - t0);
    if (r.problem !== undefined || r.lines !== LINES) {
      throw new Error(`verify: ${r.problem ?? `${r.lines} lines`}`);
    }
  }
  const v = percentile(inProcess, 50);
  const s = percentile(subject, 50);
  const b = percentile(baseline, 50);
  return [{
    name: "audit.verify_10k_lines",
    detail: `lines=${LINES} verify_p50_ms=${v.toFixed(0)} command_p50_ms=${
      s.toFixed(0)
    } launcher_startup_p50_ms=${b.toFixed(0)}`,
    ratio: s / b,
    target: "verify_p50<1000ms",
    pass: v < 1000,
  }];
};
