/**
 * Bad input against the built gcp-metadata-proxy: malformed requests get a 4xx
 * or a closed connection, never a token, and the proxy keeps answering.
 */
import assert from "node:assert/strict";
import { type Stack, startStack } from "./_utils.ts";

const enc = new TextEncoder();

/** Sends `raw` and returns the response status, or "closed". */
async function send(stack: Stack, raw: string | Uint8Array): Promise<number | "closed"> {
  const [hostname, port] = stack.proxyHostPort!.split(":");
  const conn = await Deno.connect({ hostname: hostname!, port: Number(port) });
  try {
    await conn.write(typeof raw === "string" ? enc.encode(raw) : raw).catch(() => {});
    const buf = new Uint8Array(64 * 1024);
    let text = "";
    const deadline = AbortSignal.timeout(10_000);
    while (!deadline.aborted) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
      if (text.includes("\r\n\r\n")) break;
    }
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
    if (m) {
      // A token must never come back to a malformed request.
      assert.doesNotMatch(text, /ya29\./);
      return Number(m[1]);
    }
    return "closed";
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

const F = "Metadata-Flavor: Google\r\n";
const TOKEN = "/computeMetadata/v1/instance/service-accounts/default/token";
const req = (line: string, headers = F): string =>
  `${line}\r\nHost: 127.0.0.1\r\n${headers}Connection: close\r\n\r\n`;

const CASES: Readonly<Record<string, string | Uint8Array>> = {
  "garbage request line": "GARBAGE\r\n\r\n",
  "HTTP/0.9 style": "GET /\r\n\r\n",
  "no flavor header": req(`GET ${TOKEN} HTTP/1.1`, ""),
  "lower-case flavor value": req(`GET ${TOKEN} HTTP/1.1`, "Metadata-Flavor: google\r\n"),
  "two flavor headers": req(`GET ${TOKEN} HTTP/1.1`, `${F}${F}`),
  "X-Forwarded-For": req(`GET ${TOKEN} HTTP/1.1`, `${F}X-Forwarded-For: 10.1.1.1\r\n`),
  // A page that re-points its own domain at 127.0.0.1 (DNS rebinding) sends its Host.
  "DNS-rebinding Host":
    `GET ${TOKEN} HTTP/1.1\r\nHost: attacker.example:8173\r\n${F}Connection: close\r\n\r\n`,
  "dot-dot out of the tree": req(
    "GET /computeMetadata/v1/instance/../../../../etc/passwd HTTP/1.1",
  ),
  "encoded dot-dot": req("GET /computeMetadata/v1/%2e%2e/%2e%2e/%2e%2e/etc/passwd HTTP/1.1"),
  "encoded slash in account": req(
    "GET /computeMetadata/v1/instance/service-accounts/default%2Ftoken HTTP/1.1",
  ),
  "bad percent-encoding": req("GET /computeMetadata/v1/%zz%/%%%25 HTTP/1.1"),
  "unknown service account": req(
    "GET /computeMetadata/v1/instance/service-accounts/root@evil.example/token HTTP/1.1",
  ),
  "backslashes": req("GET /computeMetadata\\v1\\instance\\ HTTP/1.1"),
  "NUL in path": enc.encode(req("GET /computeMetadata/v1/\u0000/token HTTP/1.1")),
  "control characters in path": req("GET /computeMetadata/v1/\u0007\u001b[31m HTTP/1.1"),
  "bad scopes": req(`GET ${TOKEN}?scopes=%00%ff%20"<script> HTTP/1.1`),
  "too many scopes": req(
    `GET ${TOKEN}?scopes=${Array.from({ length: 60 }, (_, i) => `s${i}`).join(",")} HTTP/1.1`,
  ),
  "huge query": req(`GET ${TOKEN}?scopes=${"a".repeat(20_000)} HTTP/1.1`),
  "many parameters": req(
    `GET ${TOKEN}?${Array.from({ length: 200 }, (_, i) => `p${i}=1`).join("&")} HTTP/1.1`,
  ),
  "huge header": req(`GET ${TOKEN} HTTP/1.1`, `${F}X-Big: ${"b".repeat(200_000)}\r\n`),
  "many headers": req(
    `GET ${TOKEN} HTTP/1.1`,
    F + Array.from({ length: 2000 }, (_, i) => `X-H${i}: v\r\n`).join(""),
  ),
  "identity without audience": req(
    "GET /computeMetadata/v1/instance/service-accounts/default/identity?format=full HTTP/1.1",
  ),
  "identity with a huge audience": req(
    `GET /computeMetadata/v1/instance/service-accounts/default/identity?audience=${
      "x".repeat(1500)
    } HTTP/1.1`,
  ),
  "bad timeout_sec": req(
    "GET /computeMetadata/v1/project/project-id?wait_for_change=true&timeout_sec=-1 HTTP/1.1",
  ),
  "POST with a large body":
    `POST ${TOKEN} HTTP/1.1\r\nHost: x\r\n${F}Content-Length: 10000000\r\n\r\nabc`,
  "PUT": req(`PUT ${TOKEN} HTTP/1.1`),
  "DELETE": req(`DELETE ${TOKEN} HTTP/1.1`),
  "unknown method": req(`BREW ${TOKEN} HTTP/1.1`),
  "CONNECT": "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n",
  "bad chunked body":
    `GET ${TOKEN} HTTP/1.1\r\nHost: x\r\n${F}Transfer-Encoding: chunked\r\n\r\nzz\r\n`,
  "header without colon": `GET ${TOKEN} HTTP/1.1\r\nHost: x\r\n${F}NoColonHere\r\n\r\n`,
  "leaf with trailing slash": req(`GET ${TOKEN}/ HTTP/1.1`),
  "double slashes": req("GET /computeMetadata//v1//instance// HTTP/1.1"),
};

Deno.test("proxy fuzz: every malformed request gets a 4xx or a closed connection", async () => {
  await using stack = await startStack();
  const results: string[] = [];
  for (const [name, raw] of Object.entries(CASES)) {
    const got = await send(stack, raw);
    const ok = got === "closed" || (got >= 400 && got < 500);
    if (!ok) results.push(`${name}: ${got}`);
  }
  assert.deepEqual(results, [], `unexpected answers:\n${results.join("\n")}\n${stack.logs()}`);
  // Still serving, and never asked the gate for a token.
  const res = await fetch(`http://${stack.proxyHostPort}/`);
  assert.equal(await res.text(), "computeMetadata/\n");
  assert.equal(stack.fake.count(/:generateAccessToken$/), 0);
});

Deno.test("proxy fuzz: slow partial requests do not block other clients", async () => {
  await using stack = await startStack();
  const [hostname, port] = stack.proxyHostPort!.split(":");
  const slow: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 50; i++) {
      const c = await Deno.connect({ hostname: hostname!, port: Number(port) });
      await c.write(enc.encode(`GET ${TOKEN} HTTP/1.1\r\nHost: x\r\nMetadata-Fla`));
      slow.push(c);
    }
    const res = await fetch(`http://${stack.proxyHostPort}${TOKEN}`, {
      headers: { "metadata-flavor": "Google" },
    });
    assert.equal(res.status, 200, stack.logs());
    assert.ok((await res.json()).access_token);
  } finally {
    for (const c of slow) {
      try {
        c.close();
      } catch { /* closed by the server */ }
    }
  }
  assert.equal((await fetch(`http://${stack.proxyHostPort}/`).then((r) => r.text())).length, 17);
});
