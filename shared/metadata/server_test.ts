import assert from "node:assert/strict";
import { createLogger } from "../log.ts";
import { type ConnectionInfo, startMetadataServer } from "./server.ts";

const log = createLogger({ level: "error", write: () => {} });
const hello = (): Response => new Response("hi", { headers: { "metadata-flavor": "Google" } });

Deno.test("startMetadataServer() serves on an ephemeral loopback port and shuts down", async () => {
  const server = await startMetadataServer({ port: 0, handler: hello, log });
  assert.ok(server.port > 0);
  const res = await fetch(`http://127.0.0.1:${server.port}/`);
  assert.equal(await res.text(), "hi");
  await server.shutdown();
  await server.finished;
});

Deno.test("authorize is asked once per connection; keep-alive requests share the verdict", async () => {
  const seen: ConnectionInfo[] = [];
  await using server = await startMetadataServer({
    port: 0,
    handler: hello,
    log,
    authorize: (conn) => {
      seen.push(conn);
      return true;
    },
  });
  const client = Deno.createHttpClient({});
  try {
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`http://127.0.0.1:${server.port}/`, { client });
      assert.equal(await res.text(), "hi");
    }
  } finally {
    client.close();
  }
  assert.equal(seen.length, 1);
  assert.equal(seen[0]?.remoteAddr.hostname, "127.0.0.1");
  assert.equal(seen[0]?.localAddr.port, server.port);
});

Deno.test("a refused connection gets a 403 with the flavor header and never reaches the handler", async () => {
  let handled = 0;
  await using server = await startMetadataServer({
    port: 0,
    handler: () => {
      handled++;
      return hello();
    },
    log,
    authorize: () => Promise.resolve(false),
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const text = await readAll(conn);
  assert.match(text, /^HTTP\/1\.1 403 Forbidden\r\n/);
  assert.match(text, /Metadata-Flavor: Google/i);
  assert.equal(handled, 0);
});

Deno.test("an authorizer that throws refuses (fails closed)", async () => {
  await using server = await startMetadataServer({
    port: 0,
    handler: hello,
    log,
    authorize: () => {
      throw new Error("cannot map connection");
    },
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  assert.match(await readAll(conn), /^HTTP\/1\.1 403/);
});

async function readAll(conn: Deno.Conn): Promise<string> {
  const chunks: string[] = [];
  const d = new TextDecoder();
  const buf = new Uint8Array(4096);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(d.decode(buf.subarray(0, n)));
    }
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
  return chunks.join("");
}

/** Opens `n` connections that send nothing. */
async function idleConnections(port: number, n: number): Promise<Deno.Conn[]> {
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < n; i++) conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
  return conns;
}

function closeAll(conns: Deno.Conn[]): void {
  for (const c of conns) {
    try {
      c.close();
    } catch { /* closed by the server */ }
  }
}

Deno.test("a flood of idle connections beyond the cap does not lock out a new client", async () => {
  await using server = await startMetadataServer({
    port: 0,
    handler: hello,
    log,
    maxConnections: 5,
  });
  const flood = await idleConnections(server.port, 20);
  try {
    // Long before any idle timeout (30 s default): the oldest idle ones made room.
    const res = await fetch(`http://127.0.0.1:${server.port}/`, {
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(await res.text(), "hi");
    assert.ok(server.connections <= 5, `${server.connections} connections open`);
  } finally {
    closeAll(flood);
  }
});

Deno.test("idle connections and trickled heads are closed at their deadlines", async () => {
  await using server = await startMetadataServer({
    port: 0,
    handler: hello,
    log,
    idleTimeoutMs: 200,
    headerTimeoutMs: 300,
  });
  const [idle, trickle] = await idleConnections(server.port, 2);
  // Half a request head, then nothing: the header deadline applies.
  await trickle!.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHo"));
  const t0 = Date.now();
  assert.equal(await readAll(idle!), "", "the idle connection is closed without an answer");
  assert.equal(await readAll(trickle!), "");
  const took = Date.now() - t0;
  assert.ok(took < 3000, `closed after ${took} ms`);
  assert.equal(server.connections, 0);
});
