/**
 * One profile's socket under a connection storm (clients connecting in a
 * loop and holding what they get, far past the socket's cap), another
 * profile's cached `/token` measured from its own thread. The gate's accept
 * loop takes every queued connection without returning to the event loop (an
 * accept with a backlog completes at once), so this measures whether a storm
 * on one socket holds the thread the other sockets need. Open finding of the
 * review of the gate's HTTP loop: p50 ~200-430 ms (target 100 ms p99).
 */
import { type BenchResult, percentile } from "./_bench.ts";
import { otherProfileUnderLoad } from "./fairness.ts";

const CONNECTORS = 16;

/** Connects to `path` from `n` loops until `stop`; the gate's closing an evicted one frees ours. */
async function storm(path: string, n: number, stop: Promise<void>): Promise<number> {
  let stopped = false;
  void stop.then(() => (stopped = true));
  let connections = 0;
  const held: Deno.Conn[] = [];
  await Promise.all(Array.from({ length: n }, async () => {
    while (!stopped) {
      try {
        const c = await Deno.connect({ transport: "unix", path });
        connections++;
        held.push(c);
        void c.read(new Uint8Array(1)).catch(() => null).then(() => {
          try {
            c.close();
          } catch { /* closed */ }
        });
      } catch {
        await new Promise((r) => setTimeout(r, 1));
      }
    }
  }));
  for (const c of held) {
    try {
      c.close();
    } catch { /* closed */ }
  }
  return connections;
}

/** Profile b's cached /token while clients connect to profile a in a loop. */
export async function benchConnectStorm(): Promise<BenchResult[]> {
  const { quiet, loaded, count: connections } = await otherProfileUnderLoad((path, stop) =>
    storm(path, CONNECTORS, stop)
  );
  const [q50, l50, l99] = [percentile(quiet, 50), percentile(loaded, 50), percentile(loaded, 99)];
  return [{
    name: "gate.other_profile_under_connect_storm",
    detail: `connectors=${CONNECTORS} quiet_p50_ms=${q50.toFixed(2)} storm_p50_ms=${
      l50.toFixed(2)
    } storm_p99_ms=${l99.toFixed(2)} requests=${loaded.length} a_connections=${connections}`,
    ratio: l50 / q50,
    target: "storm_p99<=100ms",
    pass: l99 <= 100,
  }];
}
