/**
 * The gate over an OpenSSH Unix-socket forward (docs/remote.md) vs the same
 * gate's socket directly, measured side by side in one run:
 * - cold: a token request the proxy must ask the gate for (new scope each
 *   time: proxy and gate caches both miss), through the forward vs direct;
 * - cached: a request the proxy answers from its cache (should cost nothing
 *   extra: the forward is not on that path).
 * Needs root, sshd, ssh, useradd, setpriv (tests/_sshd.ts).
 */
import { type BenchResult, percentile } from "./_bench.ts";
import { BIN, run, type RunningProcess, start, startStack, tempDir } from "../tests/_utils.ts";
import { asUser, ensureRemoteUser, sshUnavailable, startPrivateSshd } from "../tests/_sshd.ts";

const TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token";
const COLD = 30;
const CACHED = 400;
const READY = /listening on http:\/\/(127\.0\.0\.1:\d+)/;

async function timed(hostPort: string, query: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`http://${hostPort}${TOKEN_PATH}${query}`, {
    headers: { "Metadata-Flavor": "Google" },
  });
  await res.body?.cancel();
  if (res.status !== 200) throw new Error(`token request answered ${res.status}`);
  return performance.now() - t0;
}

async function waitForSocket(path: string): Promise<void> {
  for (let i = 0; i < 150; i++) {
    try {
      (await Deno.connect({ transport: "unix", path })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`the ssh forward did not appear at ${path}`);
}

/** `remote.cold_ratio` and `remote.cached_added_ms`. */
export async function benchRemote(): Promise<BenchResult[]> {
  const why = sshUnavailable();
  if (why) throw new Error(`not run: ${why}`);
  const user = ensureRemoteUser();
  await using sshd = await startPrivateSshd(user);
  await using stack = await startStack({ proxy: false });
  await using client = tempDir("gcp-gate-bench-ssh-");
  const printed = await run("gcp-gate", ["ssh-config", "bench-vm", "--config", stack.configPath]);
  const cfg = `${client.path}/ssh_config`;
  Deno.writeTextFileSync(cfg, `${printed.stdout}\n${sshd.connectionLines("bench-vm", user.name)}`);
  const socketDir = `${user.home}/.gcp-gate`;
  await run("setpriv", [...asUser(user).slice(1), "mkdir", "-m", "700", "-p", socketDir], {
    command: "setpriv",
  });
  await using _ssh = await start("ssh", ["-F", cfg, "-N", "bench-vm"], { command: "ssh" });
  await waitForSocket(`${socketDir}/gate.sock`);

  const direct = await start("gcp-metadata-proxy", [
    "--socket-path",
    stack.socketPath,
    "--port",
    "0",
  ], { ready: READY });
  const remote: RunningProcess = await start("gcp-metadata-proxy", [
    ...asUser(user).slice(1),
    "env",
    "-i",
    `HOME=${user.home}`,
    `${BIN}/gcp-metadata-proxy`,
    "--socket-path",
    `${socketDir}/gate.sock`,
    "--port",
    "0",
  ], { command: "setpriv", ready: READY, cwd: "/" });
  await using _d = direct;
  await using _r = remote;
  const d = (await direct.waitFor(READY))[1]!;
  const r = (await remote.waitFor(READY))[1]!;

  // Interleaved, so both sides see the same machine load.
  const cold = { d: [] as number[], r: [] as number[] };
  for (let i = 0; i < COLD; i++) {
    cold.d.push(await timed(d, `?scopes=https://www.googleapis.com/auth/bench.d${i}`));
    cold.r.push(await timed(r, `?scopes=https://www.googleapis.com/auth/bench.r${i}`));
  }
  const cached = { d: [] as number[], r: [] as number[] };
  await timed(d, "");
  await timed(r, "");
  for (let i = 0; i < CACHED; i++) {
    cached.d.push(await timed(d, ""));
    cached.r.push(await timed(r, ""));
  }
  const coldD = percentile(cold.d, 50);
  const coldR = percentile(cold.r, 50);
  const cachedD = percentile(cached.d, 50);
  const cachedR = percentile(cached.r, 50);
  const ms = (x: number): string => x.toFixed(3);
  return [
    {
      name: "remote.cold_token_forward_vs_direct",
      detail: `p50_forward_ms=${ms(coldR)} p50_direct_ms=${ms(coldD)} p90_forward_ms=${
        ms(percentile(cold.r, 90))
      } p90_direct_ms=${ms(percentile(cold.d, 90))} n=${COLD}`,
      ratio: coldR / coldD,
      target: "<=3",
      pass: coldR / coldD <= 3,
    },
    {
      name: "remote.cached_token_forward_vs_direct",
      detail: `p50_forward_ms=${ms(cachedR)} p50_direct_ms=${ms(cachedD)} added_ms=${
        ms(cachedR - cachedD)
      } n=${CACHED}`,
      ratio: cachedR / cachedD,
      target: "<=1.2",
      pass: cachedR / cachedD <= 1.2,
    },
  ];
}
