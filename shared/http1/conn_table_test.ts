import assert from "node:assert/strict";
import { createConnTable } from "./conn_table.ts";
import type { Http1Conn } from "./serve.ts";

/** `n` real loopback connections (the server ends), closed by the caller. */
async function conns(n: number): Promise<{ server: Deno.Conn[]; client: Deno.Conn[] }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client: Deno.Conn[] = [];
  const server: Deno.Conn[] = [];
  for (let i = 0; i < n; i++) {
    client.push(await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }));
    server.push(await listener.accept());
  }
  listener.close();
  return { server, client };
}

Deno.test("evictOne(): silent connections first, then the nearest deadline; never one in the handler", async () => {
  const { server, client } = await conns(4);
  const table = createConnTable({ sweepMs: 60_000 });
  const now = Date.now();
  const asked: Http1Conn = { deadline: now + 1_000, spoke: true };
  const silentLate: Http1Conn = { deadline: now + 30_000 };
  const silentEarly: Http1Conn = { deadline: now + 20_000 };
  const busy: Http1Conn = { deadline: 0, spoke: true };
  [asked, silentLate, silentEarly, busy].forEach((s, i) => table.add(server[i]!, s));
  try {
    assert.ok(table.evictOne());
    assert.equal(silentEarly.closed, true, "the silent one nearest its deadline goes first");
    assert.ok(table.evictOne());
    assert.equal(
      silentLate.closed,
      true,
      "then the other silent one, though its deadline is later",
    );
    assert.ok(table.evictOne());
    assert.equal(asked.closed, true, "then a client that asked something");
    assert.equal(table.evictOne(), false, "a connection inside the handler is never evicted");
    assert.equal(busy.closed, undefined);
    assert.equal(table.size, 1);
  } finally {
    table.closeAll();
    for (const c of client) c.close();
  }
});
