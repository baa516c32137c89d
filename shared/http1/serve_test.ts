import assert from "node:assert/strict";
import { MAX_HEAD_BYTES } from "./parse.ts";
import { type Http1Options, serveHttp1 } from "./serve.ts";
import { Turns } from "./turns.ts";
import { createConnTable } from "./conn_table.ts";
import { answerBytes, streamingResponse } from "./wire.ts";

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
    turns: new Turns(),
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

Deno.test("serveHttp1() reads a Content-Length body whole, even when it arrives in pieces", async () => {
  using p = await pair((req) => {
    return new Response(`${req.method} ${new TextDecoder().decode(req.body ?? new Uint8Array())}`);
  });
  const enc = new TextEncoder();
  await p.client.write(enc.encode("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhel"));
  await new Promise((r) => setTimeout(r, 20));
  await p.client.write(enc.encode("lo world"));
  await p.client.write(enc.encode("GET /y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  const text = await readUntil(p.client, () => false);
  await p.done;
  assert.match(text, /POST hello world/);
  // The body's bytes were not taken for the next request: the pipelined GET is answered.
  assert.match(text, /GET $/);
});

Deno.test("serveHttp1() refuses a chunked body with 411 and an oversized one with 413, unread", async () => {
  for (
    const [head, status] of [
      [
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        411,
      ],
      ["POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n", 413],
    ] as const
  ) {
    let called = false;
    using p = await pair(() => {
      called = true;
      return new Response("no");
    });
    await p.client.write(new TextEncoder().encode(head));
    const text = await readUntil(p.client, () => false);
    await p.done;
    assert.match(text, new RegExp(`^HTTP/1\\.1 ${status} `), text);
    assert.match(text, /x-refused: 1/);
    assert.equal(called, false, "the handler never saw it");
  }
});

Deno.test("serveHttp1() aborts req.signal as soon as the client leaves a pending request", async () => {
  const aborted = Promise.withResolvers<number>();
  let started = 0;
  using p = await pair((req) => {
    started = Date.now();
    req.signal.addEventListener("abort", () => aborted.resolve(Date.now() - started));
    return new Promise<Response>(() => {}); // never answers on its own
  });
  await p.client.write(new TextEncoder().encode("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n"));
  await new Promise((r) => setTimeout(r, 50));
  p.client.close();
  const ms = await aborted.promise;
  assert.ok(ms < 5000, `aborted after ${ms} ms`);
});

Deno.test("serveHttp1() streams a streamingResponse chunked and cancels it when the client leaves", async () => {
  const cancelled = Promise.withResolvers<void>();
  let push!: ReadableStreamDefaultController<Uint8Array>;
  using p = await pair(() =>
    streamingResponse(
      new ReadableStream<Uint8Array>({
        start: (c) => void (push = c),
        cancel: () => cancelled.resolve(),
      }),
      { "content-type": "application/x-ndjson" },
    )
  );
  await p.client.write(new TextEncoder().encode("POST /s HTTP/1.1\r\nHost: x\r\n\r\n"));
  await new Promise((r) => setTimeout(r, 20));
  push.enqueue(new TextEncoder().encode('{"event":"pending"}\n'));
  const text = await readUntil(p.client, (t) => t.includes("pending"));
  assert.match(text, /transfer-encoding: chunked\r\n/);
  assert.match(text, /\r\n14\r\n\{"event":"pending"\}\n\r\n/);
  p.client.close();
  await cancelled.promise;
  await p.done;
});

Deno.test("serveHttp1() keeps the connection for the next request after a stream ends whole", async () => {
  let n = 0;
  using p = await pair(() =>
    ++n === 1
      ? streamingResponse(
        new ReadableStream<Uint8Array>({
          start: (c) => {
            c.enqueue(new TextEncoder().encode("one\n"));
            c.close();
          },
        }),
        {},
      )
      : new Response("two")
  );
  await p.client.write(
    new TextEncoder().encode(
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ),
  );
  const text = await readUntil(p.client, () => false);
  await p.done;
  assert.match(text, /4\r\none\n\r\n0\r\n\r\nHTTP\/1\.1 200 OK/);
  assert.match(text, /two$/);
});

Deno.test("serveHttp1() answers a prebuilt hot answer without calling the handler", async () => {
  let handled = 0;
  const hotBytes = answerBytes(200, [], "hot", false);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  listener.close();
  const done = serveHttp1(server, { deadline: 0 }, {
    ...options(() => {
      handled++;
      return new Response("cold");
    }),
    hot: (req) => new URL(req.url).pathname === "/hot" ? hotBytes : undefined,
  }).finally(() => server.close());
  await client.write(
    new TextEncoder().encode(
      "GET /hot HTTP/1.1\r\nHost: x\r\n\r\nPOST /hot HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nxGET /cold HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ),
  );
  const text = await readUntil(client, () => false);
  client.close();
  await done;
  assert.equal(text.split("hot").length - 1, 1, text);
  assert.equal(handled, 2, "a request with a body and an unknown one go to the handler");
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

Deno.test("serveHttp1() never serves a request whose connection was evicted while it waited for its turn", async () => {
  const turn = Promise.withResolvers<void>();
  let waiting = false;
  const turns = {
    check: () => waiting ? undefined : (waiting = true, turn.promise),
  };
  let served = 0;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  listener.close();
  const table = createConnTable({ sweepMs: 60_000 });
  const idle = { deadline: Date.now() + 30_000 };
  const state = { deadline: 0 };
  table.add(server, state);
  // Another connection, idle since just now (a silent newcomer); closing it is a no-op here.
  const stub = { close() {} } as unknown as Deno.Conn;
  table.add(stub, idle);
  const opts = { ...options(() => (served++, new Response("ok"))), turns, headerTimeoutMs: 10_000 };
  const done = serveHttp1(server, state, opts);
  await client.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  while (!waiting) await new Promise((r) => setTimeout(r, 5));
  assert.ok(state.deadline >= idle.deadline, "waiting for a turn counts as idle, not as trickling");
  assert.ok(table.evictOne());
  assert.equal(table.size, 1, "the idle connection made room, not the waiting request");
  table.remove(server);
  turn.resolve();
  await done;
  assert.equal(served, 0, "the closed connection's request was not served");
  client.close();
  table.closeAll();
});
