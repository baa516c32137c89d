import assert from "node:assert/strict";
import { type RawAnswer, rawGet, RawHttpError } from "./raw_http.ts";

/** A one-shot TCP server that answers every connection with `answer` bytes. */
function serveRaw(answer: string): { port: number; requests: string[]; close: () => void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: string[] = [];
  (async () => {
    for await (const conn of listener) {
      const buf = new Uint8Array(4096);
      const n = await conn.read(buf);
      requests.push(new TextDecoder().decode(buf.subarray(0, n ?? 0)));
      await conn.write(new TextEncoder().encode(answer)).catch(() => {});
      conn.close();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    requests,
    close: () => listener.close(),
  };
}

function get(port: number, maxBytes = 4096): Promise<RawAnswer> {
  return rawGet({
    hostname: "127.0.0.1",
    port,
    hostHeader: `127.0.0.1:${port}`,
    path: "/p?q=1",
    headers: { "metadata-flavor": "Google" },
    signal: AbortSignal.timeout(5000),
    maxBytes,
  });
}

Deno.test("rawGet() sends a closed GET with our headers and reads a sized answer", async () => {
  const s = serveRaw(
    'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMetadata-Flavor: Google\r\nContent-Length: 11\r\n\r\n{"a":"bc"}\nEXTRA',
  );
  try {
    const res = await get(s.port);
    assert.equal(res.status, 200);
    assert.equal(res.headers["metadata-flavor"], "Google");
    assert.equal(res.body, '{"a":"bc"}\n');
    assert.match(s.requests[0]!, /^GET \/p\?q=1 HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\n/);
    assert.match(s.requests[0]!, /metadata-flavor: Google\r\nConnection: close\r\n\r\n$/);
  } finally {
    s.close();
  }
});

Deno.test("rawGet() decodes a chunked answer and refuses oversized or garbage ones", async () => {
  const chunked = serveRaw(
    "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
  );
  const big = serveRaw(`HTTP/1.1 200 OK\r\n\r\n${"x".repeat(10_000)}`);
  const junk = serveRaw("SSH-2.0-OpenSSH_9.2\r\n\r\n");
  try {
    const res = await get(chunked.port);
    assert.equal(res.status, 503);
    assert.equal(res.body, "hello world");
    await assert.rejects(get(big.port), RawHttpError);
    await assert.rejects(get(junk.port), RawHttpError);
  } finally {
    chunked.close();
    big.close();
    junk.close();
  }
});
