import assert from "node:assert/strict";
import { MAX_HEAD_BYTES } from "./parse.ts";
import { type Http1Options, serveHttp1 } from "./serve.ts";
import { answerBytes } from "./wire.ts";

function options(
  handler: Http1Options["handler"],
  signal = new AbortController().signal,
): Http1Options {
  return {
    handler,
    onError: () => new Response("err", { status: 500 }),
    refuse: (status, message) => answerBytes(status, [["x-refused", "1"]], message, true),
    maxBodyBytes: 64,
    idleTimeoutMs: 60_000,
    headerTimeoutMs: 60_000,
    now: Date.now,
    signal,
  };
}

/** Serves one accepted connection with `handler`; returns the client end. */
async function pair(
  handler: Http1Options["handler"],
): Promise<{ client: Deno.Conn; done: Promise<void>; [Symbol.dispose](): void }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  listener.close();
  const done = serveHttp1(server, { deadline: 0 }, options(handler)).finally(() => server.close());
  return {
    client,
    done,
    [Symbol.dispose]: () => {
      try {
        client.close();
      } catch { /* closed */ }
    },
  };
}

async function readUntil(conn: Deno.Conn, done: (text: string) => boolean): Promise<string> {
  const buf = new Uint8Array(8192);
  let text = "";
  while (!done(text)) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text;
}

Deno.test("serveHttp1() answers pipelined keep-alive requests in order on one connection", async () => {
  let n = 0;
  using p = await pair((req) => new Response(`${++n} ${new URL(req.url).pathname}`));
  await p.client.write(
    new TextEncoder().encode(
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nHEAD /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ),
  );
  const text = await readUntil(p.client, () => false);
  await p.done;
  const answers = text.split("HTTP/1.1 200 OK").slice(1);
  assert.equal(answers.length, 3, text);
  assert.match(answers[0]!, /content-length: 4\r\n\r\n1 \/a$/);
  assert.match(answers[1]!, /2 \/b$/);
  // HEAD: headers only, then the connection closes as asked.
  assert.match(answers[2]!, /connection: close\r\n\r\n$/);
});

Deno.test("serveHttp1() refuses an oversized head with 431 and a malformed one with 400", async () => {
  {
    using p = await pair(() => new Response("no"));
    const big = `GET / HTTP/1.1\r\nHost: x\r\nX: ${"a".repeat(MAX_HEAD_BYTES)}\r\n\r\n`;
    await p.client.write(new TextEncoder().encode(big)).catch(() => 0);
    assert.match(await readUntil(p.client, () => false), /^HTTP\/1\.1 431 /);
    await p.done;
  }
  {
    using p = await pair(() => new Response("no"));
    await p.client.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
    const text = await readUntil(p.client, () => false);
    assert.match(text, /^HTTP\/1\.1 400 /);
    assert.match(text, /x-refused: 1/, "the server's own refusal format");
    await p.done;
  }
});

Deno.test("serveHttp1() keeps its deadline current: idle, then none inside the handler", async () => {
  const state = { deadline: 0 };
  const inHandler = Promise.withResolvers<number>();
  const release = Promise.withResolvers<void>();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  listener.close();
  const done = serveHttp1(
    server,
    state,
    options(async () => {
      inHandler.resolve(state.deadline);
      await release.promise;
      return new Response("ok");
    }),
  ).finally(() => server.close());
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(state.deadline > Date.now(), "an idle connection has a deadline");
  await client.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  assert.equal(await inHandler.promise, 0, "no deadline while the handler works");
  release.resolve();
  assert.match(await readUntil(client, (t) => t.endsWith("ok")), /^HTTP\/1\.1 200/);
  client.close();
  await done;
});

Deno.test("serveHttp1() serves a request sent after pipelined ones behind an async handler as itself", async () => {
  // The handler's watcher read is still pending when the loop takes the
  // pipelined /b from the buffer: the bytes that read brings (/c) must not
  // land behind stale ones, or /b would be served again in place of /c.
  using p = await pair(async (req) => {
    await new Promise((r) => setTimeout(r, 10));
    return new Response(new URL(req.url).pathname);
  });
  const enc = new TextEncoder();
  await p.client.write(
    enc.encode("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"),
  );
  assert.match(await readUntil(p.client, (t) => t.endsWith("/b")), /\/a[^]*\/b$/);
  await p.client.write(enc.encode("GET /ccc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  // Bounded: a desynchronised server would wait for the rest of a mangled request.
  const timer = setTimeout(() => p.client.close(), 2000);
  let third = "";
  await readUntil(p.client, (t) => {
    third = t;
    return false;
  }).catch(() => {});
  clearTimeout(timer);
  assert.match(third, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n\/ccc$/, third);
  await p.done;
});

Deno.test("serveHttp1() aborts a waiting request whose client sends more than a head's worth, then leaves", async () => {
  const aborted = Promise.withResolvers<void>();
  using p = await pair(async (req) => {
    req.signal.addEventListener("abort", () => aborted.resolve());
    await aborted.promise;
    return new Response("late");
  });
  await p.client.write(new TextEncoder().encode("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n"));
  await new Promise((r) => setTimeout(r, 20));
  await p.client.write(new Uint8Array(MAX_HEAD_BYTES + 100).fill(65));
  p.client.close();
  const timer = setTimeout(() => aborted.reject(new Error("the request was never aborted")), 2000);
  try {
    await aborted.promise;
  } finally {
    clearTimeout(timer);
  }
  await p.done;
});
