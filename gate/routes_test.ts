import assert from "node:assert/strict";
import { createLogger } from "../shared/log.ts";
import type { AuditEntry, AuditLog } from "./audit.ts";
import type { IdentityService } from "./identity.ts";
import type { ProdService } from "./prod.ts";
import { createGateHandler } from "./routes.ts";
import type { DevTokenMinter, DevTokenRequest } from "./tokens.ts";

function handler(overrides: { tokens?: DevTokenMinter } = {}) {
  const entries: AuditEntry[] = [];
  const hits: string[] = [];
  const asked: DevTokenRequest[] = [];
  const audit: AuditLog = {
    record: (e) => void entries.push(e),
    countHit: (e) => void hits.push(e),
    flush: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  let minted = false;
  const tokens: DevTokenMinter = overrides.tokens ?? {
    peek: () =>
      minted ? { token: "tok", expiresAt: 1_000_000 + 1800_000, cached: true } : undefined,
    get: (req) => {
      asked.push(req);
      minted = true;
      return Promise.resolve({ token: "tok", expiresAt: 1_000_000 + 1800_000, cached: false });
    },
    reset: () => {},
  };
  const identity: IdentityService = {
    email: () => Promise.resolve("eng@example.com"),
    projectNumber: (p) => Promise.resolve(p === "demo" ? "42" : "7"),
    idToken: (aud, full) =>
      Promise.resolve({ token: `id:${aud}:${full}`, issuedAt: 0, expiresAt: 1, cached: false }),
    reset: () => {},
  };
  const unused = (): never => {
    throw new Error("unused");
  };
  const prod: ProdService = {
    openSession: unused,
    describeSession: unused,
    revokeSession: unused,
    isOpen: unused,
    recordRefusal: unused,
    sessionToken: unused,
    oneOffToken: unused,
    reset: unused,
    close: unused,
  };
  const h = createGateHandler({
    tokens,
    identity,
    serviceAccount: "dev@demo.iam.gserviceaccount.com",
    prod,
    audit,
    log: createLogger({ write: () => {} }),
    version: "1.2.3 (test)",
    maxTokenTtlSeconds: 3600,
    sessionTtlSeconds: 28800,
    universeDomain: "googleapis.com",
    defaultProject: "demo",
    startedAt: 1_000_000 - 5000,
    now: () => 1_000_000,
  });
  const call = async (path: string, init: RequestInit = {}) => {
    const res = await h(
      new Request(`http://gate.invalid${path}`, {
        ...init,
        headers: { "x-gcp-gate-protocol": "1", ...init.headers },
      }),
    );
    return { status: res.status, body: await res.json() };
  };
  return { call, entries, hits, asked, h };
}

Deno.test("GET /health needs no protocol header and reports uptime and version", async () => {
  const { call } = handler();
  const res = await call("/health", { headers: {} });
  assert.deepEqual(res.body, {
    status: "ok",
    uptime_seconds: 5,
    version: "1.2.3 (test)",
    protocol: 1,
    session_lease: true,
  });
});

Deno.test("GET /token mints with the asked scopes and ttl; audits the mint, counts the hit", async () => {
  const { call, entries, hits, asked } = handler();
  const res = await call("/token?scopes=b,a&ttl_seconds=900");
  assert.deepEqual(res.body, { access_token: "tok", expires_in: 1800, token_type: "Bearer" });
  assert.deepEqual(asked[0], { scopes: ["b", "a"], ttlSeconds: 900 });
  await call("/token?scopes=b,a&ttl_seconds=900");
  assert.equal(entries.length, 1);
  assert.equal(entries[0]!.result, "granted");
  assert.equal(entries[0]!.email, "eng@example.com", "dev decisions name the engineer");
  assert.deepEqual(hits, ["/token"]);
});

Deno.test("GET /project-number, /universe-domain, /identity, /identity-token", async () => {
  const { call } = handler();
  assert.deepEqual((await call("/project-number")).body, {
    project_id: "demo",
    project_number: "42",
  });
  assert.deepEqual((await call("/project-number?project=other-proj")).body, {
    project_id: "other-proj",
    project_number: "7",
  });
  assert.deepEqual((await call("/universe-domain")).body, { universe_domain: "googleapis.com" });
  assert.deepEqual((await call("/identity")).body, {
    email: "eng@example.com",
    service_account: "dev@demo.iam.gserviceaccount.com",
  });
  const id = await call("/identity-token?audience=https://a.example&format=full&licenses=TRUE");
  assert.deepEqual(id.body, { id_token: "id:https://a.example:true" });
  const bad = await call("/identity-token?audience=x&format=weird");
  assert.equal(bad.status, 400);
  assert.match(bad.body.error, /format must be standard or full/);
});

Deno.test("errors are {error, code} JSON with the right status", async () => {
  const { call } = handler();
  const nf = await call("/x");
  assert.deepEqual([nf.status, nf.body.code], [404, "not_found"]);
  const wm = await call("/identity", { method: "DELETE" });
  assert.deepEqual([wm.status, wm.body.code], [405, "method_not_allowed"]);
  const tl = await call(`/token?scopes=${"a".repeat(5000)}`);
  assert.deepEqual([tl.status, tl.body.code], [414, "too_large"]);
  const proto = await call("/identity", { headers: { "x-gcp-gate-protocol": "0" } });
  assert.deepEqual([proto.status, proto.body.code], [400, "protocol_mismatch"]);
});

Deno.test("a dev-token URL answered before still has its method and protocol header checked", async () => {
  const { call, hits, asked } = handler();
  const url = "/token?scopes=a&ttl_seconds=600";
  assert.equal((await call(url)).status, 200);
  assert.equal((await call(url)).status, 200);
  assert.deepEqual(hits, ["/token"], "the second answer is a counted cache hit");
  const post = await call(url, { method: "POST" });
  assert.deepEqual([post.status, post.body.code], [405, "method_not_allowed"]);
  const proto = await call(url, { headers: { "x-gcp-gate-protocol": "2" } });
  assert.deepEqual([proto.status, proto.body.code], [400, "protocol_mismatch"]);
  const missing = await call(url, { headers: { "x-gcp-gate-protocol": "" } });
  assert.deepEqual([missing.status, missing.body.code], [400, "protocol_mismatch"]);
  assert.equal(asked.length, 1, "one mint for the whole sequence");
});

Deno.test("handler.hot answers a cached dev token with the bytes the full route would send, and nothing else", async () => {
  const { call, hits, h } = handler();
  const url = "/token?scopes=a&ttl_seconds=600";
  const wire = (method: string, proto: string | null, path = url) => ({
    method,
    url: `http://gate.invalid${path}`,
    headers: new Headers(proto === null ? {} : { "x-gcp-gate-protocol": proto }),
  });
  assert.equal(h.hot?.(wire("GET", "1"), false), undefined, "not routed yet: the route decides");
  const full = await call(url);
  assert.equal(full.status, 200);
  const hot = h.hot?.(wire("GET", "1"), false);
  assert.ok(hot, "a routed, cached query is hot");
  const text = new TextDecoder().decode(hot);
  const [head, body] = text.split("\r\n\r\n") as [string, string];
  assert.deepEqual(JSON.parse(body), full.body, "the same answer as the route's");
  assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(head, /content-type: application\/json\r\ncache-control: no-store/);
  assert.match(head, new RegExp(`content-length: ${new TextEncoder().encode(body).length}$`));
  assert.deepEqual(hits, ["/token"], "counted as a cache hit like the route does");
  assert.equal(h.hot?.(wire("GET", "1"), false), hot, "the same bytes within the second");
  assert.match(new TextDecoder().decode(h.hot?.(wire("GET", "1"), true)), /connection: close/);
  // What the full route refuses, the hot path leaves to it.
  assert.equal(h.hot?.(wire("POST", "1"), false), undefined);
  assert.equal(h.hot?.(wire("HEAD", "1"), false), undefined);
  assert.equal(h.hot?.(wire("GET", "2"), false), undefined);
  assert.equal(h.hot?.(wire("GET", null), false), undefined);
  assert.equal(h.hot?.(wire("GET", "1", "/token?scopes=b&ttl_seconds=600"), false), undefined);
});
