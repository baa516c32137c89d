// deno-lint-ignore-file no-console -- the measured latencies are this test's report
/**
 * Isolation under load, through the built gate: profile A's socket is sent
 * 2,000 idle connections (beyond its own cap of 1,024, so its oldest idle
 * ones are closed to make room) and takes 500 concurrent cache misses (Google
 * made slow), while profile B's cached /token keeps answering. A's askers are
 * never locked out by its idle flood, A's upstream calls stay bounded, and
 * B's latency is printed (timing targets live in the bench).
 */
import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import { createGateClient } from "../shared/gate_client.ts";
import { MAX_UPSTREAM_PER_PROFILE } from "../gate/profile_stack.ts";
import { devSa, startProfilesGate } from "./_profiles.ts";

const IDLE = 2000;
/** A's own connection cap: the 500 askers fit, the idle flood does not. */
const A_CAP = 1024;
const MISSES = 500;
const GOOGLE_DELAY_MS = 300;
/** How long the storm of misses lasts (each of the 500 askers moves to a new key when answered). */
const STORM_MS = 3000;

/** Most requests to `sa` in flight at once, from arrival times and the fixed delay. */
function maxInFlight(arrivals: number[]): number {
  let max = 0;
  for (const t of arrivals) {
    max = Math.max(max, arrivals.filter((x) => x <= t && x > t - GOOGLE_DELAY_MS).length);
  }
  return max;
}

/**
 * Connects, waiting while the listen backlog is full: a Unix socket answers
 * EAGAIN then (the gate accepts as fast as a loaded machine lets it). Bounded.
 */
async function connectPatiently(path: string): Promise<Deno.Conn> {
  for (let attempt = 0;; attempt++) {
    try {
      return await Deno.connect({ transport: "unix", path });
    } catch (err) {
      if (!(err instanceof Deno.errors.WouldBlock) || attempt >= 200) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** How many of `conns` the gate has closed (a read ends at once); the others stay open. */
async function closedByGate(conns: Deno.Conn[]): Promise<number> {
  const buf = new Uint8Array(16);
  const ended = await Promise.all(conns.map((c) => {
    const timer = Promise.withResolvers<boolean>();
    const id = setTimeout(() => timer.resolve(false), 500);
    return Promise.race([
      c.read(buf).then((n) => n === null, () => true).finally(() => clearTimeout(id)),
      timer.promise,
    ]);
  }));
  return ended.filter(Boolean).length;
}

Deno.test("gcp-gate profiles: a flood on one socket leaves another's cached tokens flowing", async () => {
  // Started under a desktop-like soft limit of 1024 descriptors: Deno raises its soft limit to
  // the hard one at start, or a's 2,000 connections would take every descriptor b needs.
  await using g = await startProfilesGate(
    [{ name: "a", toml: `max_connections = ${A_CAP}` }, { name: "b" }],
    { softNoFile: 1024 },
  );
  // b's token is minted (and cached) by the measuring worker's first request.
  g.fake.inject({ match: /generateAccessToken$/, delayMs: GOOGLE_DELAY_MS, times: Infinity });

  const idle: Deno.Conn[] = [];
  try {
    for (let i = 0; i < IDLE; i++) idle.push(await connectPatiently(g.socket("a")));
    const worker = new Worker(new URL("./_profiles_load_worker.ts", import.meta.url), {
      type: "module",
    });
    let ready!: () => void;
    const started = new Promise<void>((r) => (ready = r));
    const report = new Promise<{ latencies: number[]; tokens: number; failures: number }>((r) =>
      worker.onmessage = (e) => e.data === "ready" ? ready() : r(e.data)
    );
    worker.postMessage({ socketPath: g.socket("b"), clients: 4 });
    await started;
    const a = createGateClient({ socketPath: g.socket("a"), timeoutMs: 30_000 });
    const end = Date.now() + STORM_MS;
    // 500 askers, each on a lifetime no one else uses (a distinct cache key,
    // so single-flight cannot merge them), moving on to a fresh one when answered.
    const storm = Promise.all(Array.from({ length: MISSES }, async (_, i) => {
      const seen: string[] = [];
      for (let k = 0; Date.now() < end; k++) {
        seen.push(
          await a.token({ ttlSeconds: 600 + (i + k * MISSES) % 3000 }).then(
            () => "ok",
            (e) => e instanceof GateError ? e.code : String(e),
          ),
        );
      }
      return seen;
    })).then((all) => all.flat());
    const outcomes = await storm;
    worker.postMessage("stop");
    const measured = await report;
    assert.equal(measured.failures, 0, "every cached /token of b was answered");
    assert.equal(measured.tokens, 1, "b served its one cached token");
    const latencies = measured.latencies;
    latencies.sort((x, y) => x - y);
    const p99 = latencies[Math.floor(latencies.length * 0.99)]!;
    const p50 = latencies[Math.floor(latencies.length * 0.5)]!;
    console.error(
      `profile b under a's flood: ${latencies.length} cached /token, p50 ${
        p50.toFixed(2)
      } ms, p99 ${p99.toFixed(2)} ms, max ${latencies.at(-1)!.toFixed(2)} ms`,
    );
    const arrivals = g.fake.requests
      .filter((r) => r.path.includes(`${encodeURIComponent(devSa("a"))}:generateAccessToken`))
      .map((r) => r.at);
    const busy = outcomes.filter((o) => o === "rate_limited").length;
    console.error(
      `profile a: ${arrivals.length} upstream mints for ${MISSES} misses, ${busy} refused busy, most in flight ${
        maxInFlight(arrivals)
      }`,
    );
    assert.ok(maxInFlight(arrivals) <= MAX_UPSTREAM_PER_PROFILE, "a's upstream calls are bounded");
    assert.ok(busy > 0, "misses beyond the bound are refused at once");
    assert.deepEqual(outcomes.filter((o) => o !== "ok" && o !== "rate_limited"), []);
    const closed = await closedByGate(idle);
    console.error(`profile a: ${closed} of ${IDLE} idle connections closed by its cap of ${A_CAP}`);
    assert.ok(closed >= IDLE - A_CAP, `the cap closed the oldest idle connections (${closed})`);
    worker.terminate();
  } finally {
    for (const c of idle) c.close();
  }
});
