/**
 * Hostile input over the raw gate socket: every malformed request gets a 4xx
 * that says what was wrong, slow clients stall nobody, and the daemon keeps
 * serving.
 */
import assert from "node:assert/strict";
import { createGateClient } from "../shared/gate_client.ts";
import { startStack } from "./_utils.ts";

const enc = new TextEncoder();
const H = "host: gate.invalid\r\nx-gcp-gate-protocol: 1\r\n";
/** Malformed bodies are checked after the lease header (a request without one is refused first). */
const LEASE = "x-gcp-gate-lease: 1\r\n";

function bytes(...parts: (string | number[])[]): Uint8Array {
  const chunks = parts.map((p) => (typeof p === "string" ? enc.encode(p) : new Uint8Array(p)));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Sends raw bytes, returns the status code and body of the answer (or "closed"). */
async function rawRequest(
  path: string,
  data: Uint8Array,
): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ transport: "unix", path });
  const timer = setTimeout(() => conn.close(), 5000);
  let got: Uint8Array = new Uint8Array(0);
  // Latin-1 keeps one character per byte, so lengths compare with content-length.
  const latin1 = (): string => new TextDecoder("latin1").decode(got);
  try {
    await conn.write(data).catch(() => {});
    const buf = new Uint8Array(16384);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      got = bytes([...got], [...buf.subarray(0, n)]);
      const raw = latin1();
      const head = raw.indexOf("\r\n\r\n");
      const len = Number(/content-length: (\d+)/i.exec(raw)?.[1] ?? NaN);
      if (head >= 0 && raw.length >= head + 4 + (Number.isNaN(len) ? 0 : len)) break;
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
  const text = new TextDecoder().decode(got);
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  return { status, body: text.slice(text.indexOf("\r\n\r\n") + 4) };
}

interface Case {
  name: string;
  data: Uint8Array;
  status: number;
  /** Expected in the JSON error message (absent: the HTTP parser answers without a body). */
  message?: RegExp;
}

const CASES: Case[] = [
  { name: "not HTTP at all", data: bytes("HELLO GATE\r\n\r\n"), status: 400 },
  { name: "binary garbage", data: bytes([0, 1, 2, 255, 254, 13, 10, 13, 10]), status: 400 },
  {
    name: "a 100 kB header",
    data: bytes(`GET /token HTTP/1.1\r\n${H}x-big: ${"a".repeat(100_000)}\r\n\r\n`),
    // The head is refused once it passes 8 KiB, without reading the rest.
    status: 431,
  },
  {
    name: "a chunked body (its length is unknown before reading it)",
    data: bytes(
      `POST /session HTTP/1.1\r\n${H}transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    ),
    status: 411,
    message: /Content-Length/,
  },
  {
    name: "a declared body over 64 KiB (refused before it is read)",
    data: bytes(`POST /session HTTP/1.1\r\n${H}content-length: 1000000\r\n\r\n`),
    status: 413,
    message: /larger than 65536 bytes/,
  },
  {
    name: "two Content-Length headers (a smuggling shape)",
    data: bytes(`POST /session HTTP/1.1\r\n${H}content-length: 2\r\ncontent-length: 3\r\n\r\n{}`),
    status: 400,
  },
  {
    name: "Content-Length and Transfer-Encoding together",
    data: bytes(
      `POST /session HTTP/1.1\r\n${H}content-length: 2\r\ntransfer-encoding: chunked\r\n\r\n{}`,
    ),
    status: 400,
  },
  {
    name: "an absolute-form target whose authority differs from Host",
    data: bytes(`GET http://other/token HTTP/1.1\r\n${H}\r\n`),
    status: 400,
  },
  {
    name: "500 headers",
    data: bytes(`GET /token HTTP/1.1\r\n${H}${"x-h: 1\r\n".repeat(500)}\r\n`),
    status: 431,
  },
  {
    name: "invalid UTF-8 in the path",
    data: bytes("GET /tok", [0xff, 0xfe], `en HTTP/1.1\r\n${H}\r\n`),
    status: 400,
  },
  {
    name: "invalid UTF-8 percent-encoded in a scope",
    data: bytes(`GET /token?scopes=%FF%FE HTTP/1.1\r\n${H}\r\n`),
    status: 400,
    message: /not a valid OAuth scope/,
  },
  {
    name: "a URL over 4 kB",
    data: bytes(`GET /token?scopes=${"a".repeat(5000)} HTTP/1.1\r\n${H}\r\n`),
    status: 414,
    message: /longer than 4096 bytes/,
  },
  {
    name: "an unknown parameter",
    data: bytes(`GET /token?scope=x HTTP/1.1\r\n${H}\r\n`),
    status: 400,
    message: /unknown query parameter "scope"; allowed: scopes, ttl_seconds/,
  },
  {
    name: "a repeated parameter",
    data: bytes(`GET /token?ttl_seconds=60&ttl_seconds=70 HTTP/1.1\r\n${H}\r\n`),
    status: 400,
    message: /given twice/,
  },
  {
    name: "a negative ttl",
    data: bytes(`GET /token?ttl_seconds=-5 HTTP/1.1\r\n${H}\r\n`),
    status: 400,
    message: /ttl_seconds must be an integer from 60 to 3600, got "-5"/,
  },
  {
    name: "a huge ttl",
    data: bytes(`GET /token?ttl_seconds=99999999999999 HTTP/1.1\r\n${H}\r\n`),
    status: 400,
    message: /ttl_seconds must be an integer from 60 to 3600/,
  },
  {
    name: "a ttl below the minimum",
    data: bytes(`GET /token?ttl_seconds=59 HTTP/1.1\r\n${H}\r\n`),
    status: 400,
    message: /from 60 to 3600/,
  },
  {
    name: "a bad level",
    data: bytes(`GET /token?level=root HTTP/1.1\r\n${H}\r\n`),
    status: 400,
    message: /level must be dev or prod/,
  },
  {
    name: "a malformed session id",
    data: bytes(`GET /token?session=abc HTTP/1.1\r\n${H}\r\n`),
    status: 400,
    message: /not a session id/,
  },
  {
    name: "an identity token without audience",
    data: bytes(`GET /identity-token HTTP/1.1\r\n${H}\r\n`),
    status: 400,
    message: /audience: required/,
  },
  {
    name: "a bad project id",
    data: bytes(`GET /project-number?project=..%2F..%2Fetc HTTP/1.1\r\n${H}\r\n`),
    status: 400,
    message: /not a project id/,
  },
  {
    name: "a declared body over 64 kB",
    data: bytes(`POST /session HTTP/1.1\r\n${H}${LEASE}content-length: 99999999\r\n\r\n{}`),
    status: 413,
    message: /larger than 65536 bytes/,
  },
  {
    name: "a body that is not JSON",
    data: bytes(`POST /session HTTP/1.1\r\n${H}${LEASE}content-length: 5\r\n\r\n{{{{{`),
    status: 400,
    message: /not valid JSON/,
  },
  {
    name: "a body that is invalid UTF-8",
    data: bytes(
      `POST /session HTTP/1.1\r\n${H}${LEASE}content-type: application/json\r\ncontent-length: 4\r\n\r\n`,
      [0x22, 0xff, 0xfe, 0x22],
    ),
    status: 400,
    message: /not valid UTF-8/,
  },
  {
    name: "a JSON array body",
    data: bytes(`POST /session HTTP/1.1\r\n${H}${LEASE}content-length: 2\r\n\r\n[]`),
    status: 400,
    message: /must be a JSON object/,
  },
  {
    name: "a non-JSON content type",
    data: bytes(
      `POST /session HTTP/1.1\r\n${H}${LEASE}content-type: text/plain\r\ncontent-length: 2\r\n\r\n{}`,
    ),
    status: 415,
    message: /content-type must be application\/json/,
  },
  {
    name: "a wrong protocol version",
    data: bytes(`GET /token HTTP/1.1\r\nhost: x\r\nx-gcp-gate-protocol: 2\r\n\r\n`),
    status: 400,
    message: /this gate speaks 1/,
  },
  {
    // Request cannot carry it: it must not reach the routes (a 500 and an error line per request).
    name: "a method Request refuses (CONNECT)",
    data: bytes(`CONNECT /token HTTP/1.1\r\n${H}\r\n`),
    status: 400,
    message: /method is not served/,
  },
  {
    name: "a Host the URL parser refuses",
    data: bytes(`GET /health HTTP/1.1\r\nhost: [\r\nx-gcp-gate-protocol: 1\r\n\r\n`),
    status: 400,
    message: /malformed Host/,
  },
  {
    name: "an unknown method",
    data: bytes(`BREW /token HTTP/1.1\r\n${H}\r\n`),
    status: 405,
    message: /accepts GET, not BREW/,
  },
];

Deno.test("gcp-gate answers every malformed request with a 4xx and keeps serving", async () => {
  await using stack = await startStack({ proxy: false });
  // A slow client holds a half-sent request open the whole time.
  const slow = await Deno.connect({ transport: "unix", path: stack.socketPath });
  await slow.write(enc.encode("GET /token HTTP/1.1\r\nhost: x\r\nx-slow: "));
  try {
    for (const c of CASES) {
      const res = await rawRequest(stack.socketPath, c.data);
      assert.equal(res.status, c.status, `${c.name}: got ${res.status} ${res.body}`);
      if (c.message) {
        const body = JSON.parse(res.body);
        assert.equal(typeof body.code, "string", c.name);
        assert.match(body.error, c.message, c.name);
      }
    }
    const gate = createGateClient({ socketPath: stack.socketPath });
    try {
      assert.equal((await gate.health()).status, "ok");
      assert.ok((await gate.token()).access_token.length > 0, "still mints tokens");
    } finally {
      gate.close();
    }
  } finally {
    slow.close();
  }
  assert.equal(stack.fake.count(/generateAccessToken$/), 1, "no bad request reached Google");
  // A client's mistakes are answered, not logged as the gate's errors.
  assert.doesNotMatch(stack.gate.output(), /error: /);
});
