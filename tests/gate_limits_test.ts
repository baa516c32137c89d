/**
 * The gate's per-socket connection limits, through the built gate:
 * `max_connections` (at the cap the oldest idle connection makes room),
 * `idle_timeout_seconds`, both per profile and applied by a reload, and
 * the live counts `gcp-gate status` reports.
 */
import assert from "node:assert/strict";
import { createGateClient } from "../shared/gate_client.ts";
import { startProfilesGate } from "./_profiles.ts";
import { startStack } from "./_utils.ts";

/** Opens `n` connections to `path` that send nothing. */
async function idle(path: string, n: number): Promise<Deno.Conn[]> {
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < n; i++) conns.push(await Deno.connect({ transport: "unix", path }));
  return conns;
}

/** How many of `conns` the gate has closed (a read ends within `waitMs`). */
async function closedByGate(conns: Deno.Conn[], waitMs = 300): Promise<number> {
  const buf = new Uint8Array(16);
  const ended = await Promise.all(conns.map((c) => {
    const timer = Promise.withResolvers<boolean>();
    const id = setTimeout(() => timer.resolve(false), waitMs);
    return Promise.race([
      c.read(buf).then((n) => n === null, () => true).finally(() => clearTimeout(id)),
      timer.promise,
    ]);
  }));
  return ended.filter(Boolean).length;
}

function closeAll(conns: Deno.Conn[]): void {
  for (const c of conns) {
    try {
      c.close();
    } catch { /* closed */ }
  }
}

Deno.test("gcp-gate: 40 idle connections over max_connections = 8 do not lock a client out", async () => {
  await using stack = await startStack({ proxy: false, gateToml: "max_connections = 8" });
  const flood = await idle(stack.socketPath, 40);
  const gate = createGateClient({ socketPath: stack.socketPath, timeoutMs: 5000 });
  try {
    assert.ok((await gate.token()).access_token.length > 0, "a new client is served");
    // 40 idle + 1 client through a cap of 8: at least 33 were closed to make room.
    const closed = await closedByGate(flood);
    assert.ok(closed >= 33, `${closed} of 40 idle connections closed`);
    assert.ok(closed < 40, "the newest idle connections are still open");
    assert.match(stack.gate.output(), /connection cap reached/);
  } finally {
    gate.close();
    closeAll(flood);
  }
});

Deno.test("gcp-gate: an idle connection is closed after idle_timeout_seconds", async () => {
  await using stack = await startStack({ proxy: false, gateToml: "idle_timeout_seconds = 1" });
  const [conn] = await idle(stack.socketPath, 1);
  const t0 = Date.now();
  assert.equal(await closedByGate([conn!], 5000), 1, "closed by the gate");
  const took = Date.now() - t0;
  assert.ok(took >= 900 && took < 4000, `closed after ${took} ms`);
  conn!.close();
});

Deno.test("gcp-gate reload: a profile's new max_connections applies to its socket only", async () => {
  await using g = await startProfilesGate([{ name: "a" }, { name: "b" }]);
  g.writeConfig([{ name: "a", toml: "max_connections = 4" }, { name: "b" }]);
  const reload = await g.cli("reload");
  assert.equal(reload.code, 0, reload.stderr);
  const onA = await idle(g.socket("a"), 20);
  const onB = await idle(g.socket("b"), 20);
  try {
    assert.ok(await closedByGate(onA) >= 16, "a's cap of 4 closed its oldest idle connections");
    assert.equal(await closedByGate(onB), 0, "b (default cap 256) closed none");
    const status = JSON.parse((await g.cli("status", "--json")).stdout);
    const conns = Object.fromEntries(
      status.profiles.map((p: { name: string; connections: unknown }) => [p.name, p.connections]),
    );
    assert.deepEqual(conns, { a: { open: 4, max: 4 }, b: { open: 20, max: 256 } });
    const b = createGateClient({ socketPath: g.socket("b"), timeoutMs: 5000 });
    try {
      assert.ok((await b.token()).access_token.length > 0);
    } finally {
      b.close();
    }
  } finally {
    closeAll(onA);
    closeAll(onB);
  }
});
