import assert from "node:assert/strict";
import { parseHead } from "./parse.ts";

Deno.test("parseHead() passes the target on as sent, with case-insensitive headers", () => {
  const p = parseHead(
    "GET /computeMetadata/v1/?recursive=true HTTP/1.1\r\nHost: 127.0.0.1:8173\r\nMetadata-Flavor: Google\r\nX-A: 1\r\nx-a: 2",
  );
  assert.ok(p.ok);
  assert.equal(p.req.url, "http://127.0.0.1:8173/computeMetadata/v1/?recursive=true");
  assert.equal(p.req.method, "GET");
  assert.equal(p.req.headers.get("metadata-flavor"), "Google");
  assert.equal(p.req.headers.get("X-A"), "1, 2");
  assert.equal(p.req.headers.has("x-forwarded-for"), false);
  assert.equal(p.close, false);
  // Dot segments reach the handler unnormalised, so it can refuse them.
  const dots = parseHead("GET /computeMetadata/../x HTTP/1.1\r\nHost: a");
  assert.ok(dots.ok);
  assert.equal(dots.req.url, "http://a/computeMetadata/../x");
});

Deno.test("parseHead() refuses malformed heads with 400", () => {
  for (
    const head of [
      "GET /x HTTP/1.1", // no Host
      "GET /x HTTP/1.1\r\nHost: a\r\nHost: b", // two Hosts
      "GET /x HTTP/2.0\r\nHost: a",
      "GET x HTTP/1.1\r\nHost: a", // not origin-form
      "GET /a b HTTP/1.1\r\nHost: a",
      "GET /x HTTP/1.1\r\nHost: a\r\n folded", // obs-fold
      "GET /x HTTP/1.1\r\nHost: a\r\nBad Name: 1",
      "GET /x HTTP/1.1\r\nHost: a\r\nX: caf\u00e9",
      "GET /x HTTP/1.1\r\nHost: a/b",
      "GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: -1",
      "G(T /x HTTP/1.1\r\nHost: a",
    ]
  ) {
    const p = parseHead(head);
    assert.ok(!p.ok, JSON.stringify(head));
    assert.equal(p.status, 400, JSON.stringify(head));
  }
});

Deno.test("parseHead() closes after HTTP/1.0 or Connection: close", () => {
  const close = (head: string): boolean => {
    const p = parseHead(head);
    assert.ok(p.ok, head);
    return p.close;
  };
  assert.equal(close("GET / HTTP/1.0\r\nHost: a"), true);
  assert.equal(close("GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive"), false);
  assert.equal(close("GET / HTTP/1.1\r\nHost: a\r\nConnection: close"), true);
  assert.equal(close("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5"), false);
});

Deno.test("parseHead() reports a declared body and refuses ambiguous lengths", () => {
  const p = parseHead("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12");
  assert.ok(p.ok);
  assert.equal(p.bodyLength, 12);
  assert.equal(p.chunked, false);
  const c = parseHead("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked");
  assert.ok(c.ok);
  assert.equal(c.chunked, true);
  for (
    const head of [
      // Two lengths, or a length and an encoding: two parsers could split the stream differently.
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5",
    ]
  ) {
    const r = parseHead(head);
    assert.ok(!r.ok, JSON.stringify(head));
    assert.equal(r.status, 400);
  }
});

Deno.test("parseHead() refuses more than 100 header fields with 431", () => {
  const head = (n: number) => `GET / HTTP/1.1\r\nHost: a${"\r\nX: 1".repeat(n)}`;
  assert.ok(parseHead(head(99)).ok);
  const p = parseHead(head(100));
  assert.ok(!p.ok);
  assert.equal(p.status, 431);
});

Deno.test("parseHead() takes the absolute form only when asked, and only matching Host", () => {
  const abs = "GET http://gate.invalid/token?x=1 HTTP/1.1\r\nHost: gate.invalid";
  const refused = parseHead(abs);
  assert.ok(!refused.ok, "the metadata servers never see proxy requests");
  const p = parseHead(abs, { absoluteForm: true });
  assert.ok(p.ok);
  assert.equal(p.req.url, "http://gate.invalid/token?x=1");
  const bare = parseHead("GET http://gate.invalid HTTP/1.1\r\nHost: gate.invalid", {
    absoluteForm: true,
  });
  assert.ok(bare.ok);
  assert.equal(bare.req.url, "http://gate.invalid/");
  const other = parseHead("GET http://evil/token HTTP/1.1\r\nHost: gate.invalid", {
    absoluteForm: true,
  });
  assert.ok(!other.ok);
  assert.equal(other.status, 400);
});

Deno.test("parseHead() refuses hosts the URL parser refuses, and methods Request cannot carry", () => {
  for (const host of ["[", "a:b", "a:99999", "1.2.3.4.5", "[::1"]) {
    const p = parseHead(`GET /x HTTP/1.1\r\nHost: ${host}`);
    assert.ok(!p.ok, host);
    assert.equal(p.status, 400, host);
  }
  for (const method of ["CONNECT", "TRACE", "TRACK", "connect"]) {
    const p = parseHead(`${method} /x HTTP/1.1\r\nHost: a`);
    assert.ok(!p.ok, method);
    assert.equal(p.status, 400, method);
  }
  for (const host of ["127.0.0.1:8173", "[::1]:80", "gate.invalid", "metadata.google.internal"]) {
    const p = parseHead(`GET /x HTTP/1.1\r\nHost: ${host}`);
    assert.ok(p.ok, host);
    // Every URL a handler gets is one `Request` and `new URL` accept.
    assert.doesNotThrow(() => new Request(p.req.url, { method: p.req.method }), host);
  }
});

Deno.test("parseHead() hands out sealed headers (parsed heads are cached and shared)", () => {
  const p = parseHead("GET / HTTP/1.1\r\nHost: a\r\nX: 1");
  assert.ok(p.ok);
  assert.throws(() => p.req.headers.add("x", "2"), TypeError);
  assert.equal(p.req.headers.get("x"), "1");
});
