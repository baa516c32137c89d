/**
 * One profile's socket flooded by pipelining clients (each keeps hundreds of
 * requests buffered), another profile's cached `/token` measured from its own
 * thread: p50 and p99 with and without the flood, in one run. One JavaScript
 * thread serves every socket, so this is what the gate's fairness (a
 * connection yields once it has held the thread 2 ms) must bound.
 */
import { type BenchResult, percentile } from "./_bench.ts";
import { startProfilesGate } from "../tests/_profiles.ts";

const FLOOD_CONNECTIONS = 32;
const DEPTH = 200;
const MEASURE_MS = 3000;
const HEAD = "GET /health HTTP/1.1\r\nhost: gate.invalid\r\nx-gcp-gate-protocol: 1\r\n\r\n";

/** Cached /token latencies on `socketPath` for `ms`, measured by a Worker. */
export async function measure(socketPath: string, ms: number): Promise<number[]> {
  const worker = new Worker(new URL("../tests/_profiles_load_worker.ts", import.meta.url), {
    type: "module",
  });
  try {
    const ready = Promise.withResolvers<void>();
    const report = new Promise<{ latencies: number[]; failures: number }>((resolve) =>
      worker.onmessage = (e) => e.data === "ready" ? ready.resolve() : resolve(e.data)
    );
    worker.postMessage({ socketPath, clients: 1 });
    await ready.promise;
    await new Promise((r) => setTimeout(r, ms));
    worker.postMessage("stop");
    const { latencies, failures } = await report;
    if (failures > 0) throw new Error(`${failures} cached /token requests failed`);
    return latencies;
  } finally {
    worker.terminate();
  }
}

/** Keeps `n` connections to `path` full of pipelined requests until `stop` resolves. */
async function flood(path: string, n: number, stop: Promise<void>): Promise<number> {
  const batch = new TextEncoder().encode(HEAD.repeat(DEPTH));
  let stopped = false;
  void stop.then(() => (stopped = true));
  let answers = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    const c = await Deno.connect({ transport: "unix", path });
    const drain = (async () => {
      const buf = new Uint8Array(1 << 16);
      for (;;) {
        const got = await c.read(buf).catch(() => null);
        if (got === null) return;
        answers += got;
      }
    })();
    while (!stopped) await c.write(batch).catch(() => (stopped = true));
    c.close();
    await drain;
  }));
  return answers;
}

/** What {@linkcode otherProfileUnderLoad} measured of profile b. */
export interface UnderLoad {
  quiet: number[];
  loaded: number[];
  /** What the load function returned (its own count). */
  count: number;
}

/**
 * Profile b's cached /token latencies, first quiet, then while `load` runs on
 * profile a's socket (it stops when the promise it is given resolves).
 */
export async function otherProfileUnderLoad(
  load: (socketPath: string, stop: Promise<void>) => Promise<number>,
): Promise<UnderLoad> {
  await using g = await startProfilesGate([{ name: "a" }, { name: "b" }]);
  const quiet = await measure(g.socket("b"), MEASURE_MS);
  const done = Promise.withResolvers<void>();
  const loading = load(g.socket("a"), done.promise);
  await new Promise((r) => setTimeout(r, 300));
  const loaded = await measure(g.socket("b"), MEASURE_MS);
  done.resolve();
  return { quiet, loaded, count: await loading };
}

/** Profile b's cached /token under a pipelining flood on profile a. */
export async function benchFairness(): Promise<BenchResult[]> {
  const { quiet, loaded, count: bytes } = await otherProfileUnderLoad((path, stop) =>
    flood(path, FLOOD_CONNECTIONS, stop)
  );
  const [q50, l50, l99] = [percentile(quiet, 50), percentile(loaded, 50), percentile(loaded, 99)];
  return [{
    name: "gate.other_profile_under_pipelining_flood",
    detail: `flood_connections=${FLOOD_CONNECTIONS} quiet_p50_ms=${q50.toFixed(2)} flooded_p50_ms=${
      l50.toFixed(2)
    } flooded_p99_ms=${l99.toFixed(2)} requests=${loaded.length} a_answer_mb=${
      (bytes / 1e6).toFixed(0)
    }`,
    ratio: l50 / q50,
    target: "flooded_p99<=100ms",
    pass: l99 <= 100,
  }];
}
