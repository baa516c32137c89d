/**
 * with-prod's restricted proxy: the cost of a NEW connection (connect, one
 * token request with `Connection: close`, answer read), with 0 and then
 * 20,000 TIME_WAIT rows in the kernel's TCP table, beside the same requests
 * to the unrestricted gcp-metadata-proxy in the same run.
 *
 * Each new connection is vetted (client socket → owner process → ancestry),
 * and a machine full of TIME_WAIT sockets (a client that opens a connection
 * per request makes them itself) used to make that cost grow with the table.
 * The TIME_WAIT rows are made here by opening and closing loopback
 * connections to a private listener (bounded: 20,000, gone 60 s later).
 * Also reported: the /proc/net/tcp search alone at 20,000 rows (the path used
 * where sock_diag is unavailable), measured in this process.
 */
import { type BenchResult, percentile } from "./_bench.ts";
import { run, start, startStack, tempDir } from "../tests/_utils.ts";
import { findInTable } from "../wrap/tcp_table.ts";
import { autoApprove, WRAP_GATE_TOML } from "./wrap.ts";

const TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token";
const TIME_WAIT_ROWS = 20_000;
const SAMPLES = 150;
const TARGET_MS = 5;

/**
 * Runs inside with-prod (its GCE_METADATA_HOST is the restricted proxy):
 * for each phase named on stdin ("go"), times SAMPLES fresh connections to
 * the restricted and the unrestricted proxy, interleaved, and prints JSON.
 */
const CLIENT_JS = `
const [restricted, unrestricted] = [Deno.env.get("GCE_METADATA_HOST"), Deno.args[0]];
const req = new TextEncoder().encode("GET ${TOKEN_PATH} HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nMetadata-Flavor: Google\\r\\nConnection: close\\r\\n\\r\\n");
async function once(hostPort) {
  const [hostname, port] = hostPort.split(":");
  const t0 = performance.now();
  const conn = await Deno.connect({ hostname, port: Number(port) });
  await conn.write(req);
  const buf = new Uint8Array(4096);
  let text = "";
  for (;;) { const n = await conn.read(buf); if (n === null) break; text += new TextDecoder().decode(buf.subarray(0, n)); }
  conn.close();
  const ms = performance.now() - t0;
  if (!text.startsWith("HTTP/1.1 200")) throw new Error("not 200: " + text.slice(0, 80));
  return ms;
}
const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
let pending = "";
for await (const chunk of lines) {
  pending += chunk;
  while (pending.includes("\\n")) {
    const line = pending.slice(0, pending.indexOf("\\n"));
    pending = pending.slice(pending.indexOf("\\n") + 1);
    if (line !== "go") Deno.exit(0);
    const r = [], u = [];
    for (let i = 0; i < 10; i++) { await once(restricted); await once(unrestricted); }
    for (let i = 0; i < ${SAMPLES}; i++) { r.push(await once(restricted)); u.push(await once(unrestricted)); }
    console.log(JSON.stringify({ r, u }));
  }
}
`;

function timeWaitRows(): number {
  const table = Deno.readTextFileSync("/proc/net/tcp");
  return table.split("\n").filter((l) => / 06 /.test(l.slice(0, 50))).length;
}

/** Opens and closes `count` loopback connections (client closes first: its side waits in TIME_WAIT). */
async function churn(count: number): Promise<void> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  const accepting = (async () => {
    for (let i = 0; i < count; i++) {
      const c = await listener.accept();
      // Read the client's FIN, then close: the client's socket enters TIME_WAIT.
      await c.read(new Uint8Array(1)).catch(() => null);
      c.close();
    }
  })();
  for (let i = 0; i < count; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + 50); j++) {
      batch.push(Deno.connect({ hostname: "127.0.0.1", port }).then((c) => c.close()));
    }
    await Promise.all(batch);
  }
  await accepting;
}

/**
 * Makes at least `rows` TIME_WAIT rows (bounded attempts). One listener per
 * 2,500 connections: the kernel reuses a loopback TIME_WAIT port for the
 * same destination, so one destination alone plateaus near 12,000 rows.
 */
async function makeTimeWait(rows: number): Promise<number> {
  for (let made = 0; timeWaitRows() < rows && made < rows * 1.5; made += 2500) {
    await churn(2500);
  }
  return timeWaitRows();
}

/** The /proc/net/tcp search alone for a live connection, ms per lookup. */
async function tableSearchMs(): Promise<number> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  const key = {
    client: { address: "127.0.0.1", port: client.localAddr.port },
    server: { address: "127.0.0.1", port: listener.addr.port },
  };
  const samples: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t0 = performance.now();
    if (!findInTable(key)) throw new Error("the table search did not find a live connection");
    samples.push(performance.now() - t0);
  }
  client.close();
  server.close();
  return percentile(samples, 50);
}

function fmt(xs: number[], p: number): string {
  return percentile(xs, p).toFixed(2);
}

export async function wrapNewConnection(): Promise<BenchResult[]> {
  await using stack = await startStack({ gateToml: WRAP_GATE_TOML });
  await using _approver = autoApprove(stack);
  await using dir = tempDir("gcp-gate-bench-");
  const script = `${dir.path}/client.js`;
  Deno.writeTextFileSync(script, CLIENT_JS);
  const env = { ...stack.clientEnv, GCP_GATE_CONFIG: stack.configPath };
  // Warm the dev proxy's cache.
  await run("curl", [
    "-s",
    "-H",
    "Metadata-Flavor: Google",
    `http://${stack.proxyHostPort}${TOKEN_PATH}`,
  ], {
    command: "curl",
    env,
  });
  await using p = await start("with-prod", [
    "--",
    Deno.execPath(),
    "run",
    "--no-config",
    "-A",
    script,
    stack.proxyHostPort!,
  ], { env, stdin: "piped" });
  const writer = p.child.stdin.getWriter();
  const results = (): string[] => p.stdout().split("\n").filter((l) => l.startsWith("{"));
  const phase = async (n: number): Promise<{ r: number[]; u: number[] }> => {
    await writer.write(new TextEncoder().encode("go\n"));
    const deadline = Date.now() + 120_000;
    while (results().length < n) {
      if (Date.now() > deadline) throw new Error(`no result from the client:\n${p.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return JSON.parse(results()[n - 1]!);
  };
  // A shared machine is never at exactly 0: report what the first phase saw.
  const rowsBefore = timeWaitRows();
  const empty = await phase(1);
  const rows = await makeTimeWait(TIME_WAIT_ROWS);
  const full = await phase(2);
  const searchMs = await tableSearchMs();
  await writer.write(new TextEncoder().encode("stop\n"));
  await writer.close().catch(() => {});
  const status = await p.status;
  if (status.code !== 0) throw new Error(`with-prod failed:\n${p.output()}`);
  const p50 = percentile(full.r, 50);
  return [{
    name: "wrap.new_connection_ms",
    detail: [
      `time_wait_rows=${rowsBefore} restricted_p50_ms=${fmt(empty.r, 50)} restricted_p90_ms=${
        fmt(empty.r, 90)
      } unrestricted_p50_ms=${fmt(empty.u, 50)}`,
      `time_wait_rows=${rows} restricted_p50_ms=${fmt(full.r, 50)} restricted_p90_ms=${
        fmt(full.r, 90)
      } unrestricted_p50_ms=${fmt(full.u, 50)} unrestricted_p90_ms=${fmt(full.u, 90)}`,
      `proc_table_search_p50_ms=${searchMs.toFixed(2)} samples=${SAMPLES}`,
    ].join(" "),
    ratio: p50 / percentile(full.u, 50),
    target: `restricted_p50<=${TARGET_MS}ms`,
    pass: p50 <= TARGET_MS,
  }];
}
