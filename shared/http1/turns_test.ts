import assert from "node:assert/strict";
import { createLogger } from "../log.ts";
import { serveListener } from "./accept.ts";
import { answerBytes } from "./wire.ts";
import { YIELD_AFTER_MS } from "./turns.ts";

const HOGS = 100;
// Each hog request holds the thread this long, so a budget of YIELD_AFTER_MS
// allows a handful of them per turn of the event loop.
const HOG_WORK_MS = 0.5;

function listen(dir: string, name: string, handler: () => Response) {
  const path = `${dir}/${name}.sock`;
  const served = serveListener({
    listener: Deno.listen({ transport: "unix", path }),
    log: createLogger({ write: () => {} }),
    handler,
    onError: () => new Response("err", { status: 500 }),
    refuse: (status, message) => answerBytes(status, [], message, true),
    maxBodyBytes: 64,
    maxConnections: HOGS + 10,
    idleTimeoutMs: 60_000,
    headerTimeoutMs: 60_000,
    drainMs: 100,
  });
  return { path, served };
}

Deno.test("serveListener() bounds one socket's share of each turn, however many connections flood it", async () => {
  const dir = await Deno.makeTempDir();
  let hogServed = 0;
  const hog = listen(dir, "hog", () => {
    hogServed++;
    const end = performance.now() + HOG_WORK_MS;
    while (performance.now() < end) { /* a request that costs the thread HOG_WORK_MS */ }
    return new Response("hog");
  });
  const victim = listen(dir, "victim", () => new Response("ok"));
  const request = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  let flooding = true;
  const hogs = await Promise.all(
    Array.from({ length: HOGS }, () => Deno.connect({ transport: "unix", path: hog.path })),
  );
  const floods = hogs.map(async (c) => {
    const batch = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(100));
    const buf = new Uint8Array(1 << 16);
    const drain = (async () => {
      while (await c.read(buf).catch(() => null) !== null) { /* answers */ }
    })();
    while (flooding) await c.write(batch).catch(() => (flooding = false));
    await drain;
  });
  const v = await Deno.connect({ transport: "unix", path: victim.path });
  try {
    // Let the flood fill every hog connection first.
    while (hogServed < HOGS * 2) await new Promise((r) => setTimeout(r, 10));
    // Hog requests served while one victim request waited for its answer.
    const during: number[] = [];
    const buf = new Uint8Array(4096);
    for (let i = 0; i < 20; i++) {
      const before = hogServed;
      await v.write(request);
      assert.notEqual(await v.read(buf), null);
      during.push(hogServed - before);
    }
    during.sort((a, b) => a - b);
    const median = during[during.length >> 1]!;
    // A victim round trip spans a few turns; each turn the hog socket may
    // spend YIELD_AFTER_MS (plus the request that crosses it). Before this
    // was per socket, every hog connection served a request per turn (>= HOGS).
    const perTurn = Math.ceil(YIELD_AFTER_MS / HOG_WORK_MS) + 2;
    assert.ok(median <= 5 * perTurn, `hog requests per victim request: ${during.join(",")}`);
  } finally {
    flooding = false;
    v.close();
    // Closing ends the pending writes and reads of the flood at once.
    for (const c of hogs) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await Promise.all(floods);
    await hog.served.shutdown();
    await victim.served.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
