import assert from "node:assert/strict";
import { GateError } from "../errors.ts";
import { createLogger } from "../log.ts";
import type { IdentityTokenRequest } from "../gate_client.ts";
import type { TokenResponse } from "../protocol.ts";
import { createMetadataHandler, type MetadataDeps, type MetadataGate } from "./handler.ts";
import { jwtExpiry } from "./jwt.ts";
import { createTokenCache } from "./token_cache.ts";

const SA = "dev@demo-project.iam.gserviceaccount.com";
/** The account named by the gate's ID tokens (as the real gate does). */
const ID_SA = "dev-id@demo-project.iam.gserviceaccount.com";
const BASE = "http://127.0.0.1:8173";
const FLAVOR = { "metadata-flavor": "Google" };

function b64url(s: string): string {
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

function fakeJwt(claims: Record<string, unknown>): string {
  return `${b64url('{"alg":"RS256"}')}.${b64url(JSON.stringify(claims))}.sig`;
}

interface Fixture {
  handler: (req: Request) => Promise<Response>;
  calls: string[];
  clock: { now: number };
  failGate(on: boolean): void;
}

function fixture(over: Partial<MetadataDeps> = {}): Fixture {
  const calls: string[] = [];
  const clock = { now: 1_700_000_000_000 };
  let failing = false;
  const down = (): GateError => new GateError("gate_unreachable", "gate socket not found");
  let n = 0;
  const gate: MetadataGate = {
    identity: () => {
      calls.push("identity");
      return failing
        ? Promise.reject(down())
        : Promise.resolve({ email: "engineer@example.com", service_account: ID_SA });
    },
    projectNumber: (project) => {
      calls.push(`projectNumber:${project}`);
      return failing
        ? Promise.reject(down())
        : Promise.resolve({ project_id: "demo-project", project_number: "123456789012" });
    },
    universeDomain: () => {
      calls.push("universeDomain");
      return failing
        ? Promise.reject(down())
        : Promise.resolve({ universe_domain: "googleapis.com" });
    },
    identityToken: (req: IdentityTokenRequest) => {
      calls.push(`identityToken:${req.audience}|${req.format}|${req.licenses}`);
      if (failing) return Promise.reject(down());
      const exp = Math.floor(clock.now / 1000) + 3600;
      const email = req.format === "full" ? { email: ID_SA } : {};
      return Promise.resolve({ id_token: fakeJwt({ aud: req.audience, exp, ...email }) });
    },
  };
  const tokens = createTokenCache({
    now: () => clock.now,
    fetch: (scopes): Promise<TokenResponse> => {
      calls.push(`token:${scopes.join(" ")}`);
      if (failing) return Promise.reject(down());
      n++;
      return Promise.resolve({
        access_token: `ya29.t${n}`,
        expires_in: 3600,
        token_type: "Bearer",
      });
    },
  });
  const handler = createMetadataHandler({
    tokens,
    gate,
    projectId: "demo-project",
    serviceAccount: SA,
    zone: "us-central1-a",
    now: () => clock.now,
    maxWaitSeconds: 0,
    ...over,
  });
  return {
    handler: (req) => Promise.resolve(handler(req)),
    calls,
    clock,
    failGate: (on) => (failing = on),
  };
}

function get(path: string, headers: Record<string, string> = FLAVOR, method = "GET"): Request {
  return new Request(`${BASE}${path}`, { method, headers });
}

async function expectFlavor(res: Response): Promise<string> {
  assert.equal(res.headers.get("metadata-flavor"), "Google");
  assert.equal(res.headers.get("server"), "Metadata Server for VM");
  return await res.text();
}

Deno.test("GET / answers computeMetadata/ without the flavor header", async () => {
  const { handler } = fixture();
  const res = await handler(get("/", {}));
  assert.equal(res.status, 200);
  assert.equal(await expectFlavor(res), "computeMetadata/\n");
  assert.equal(res.headers.get("content-type"), "application/text");
});

Deno.test("metadata paths need the exact flavor header and refuse X-Forwarded-For", async () => {
  const { handler } = fixture();
  for (
    const headers of [
      {},
      { "metadata-flavor": "google" },
      { "metadata-flavor": "Google, Google" },
      {
        ...FLAVOR,
        "x-forwarded-for": "10.0.0.1",
      },
    ]
  ) {
    for (
      const path of [
        "/computeMetadata/v1/project/project-id",
        // The hot path has its own, faster checks: same rules.
        "/computeMetadata/v1/instance/service-accounts/default/token",
      ]
    ) {
      const res = await handler(get(path, headers));
      assert.equal(res.status, 403, `${path} ${JSON.stringify(headers)}`);
      const body = await expectFlavor(res);
      assert.ok(!body.includes("demo-project") && !body.includes("ya29."));
    }
  }
});

Deno.test("a directory without its slash redirects to the slash form, query kept", async () => {
  const { handler } = fixture();
  const res = await handler(
    get("/computeMetadata/v1/instance?recursive=true&x=1", { ...FLAVOR, host: "127.0.0.1:9999" }),
  );
  assert.equal(res.status, 301);
  assert.equal(
    res.headers.get("location"),
    "http://127.0.0.1:9999/computeMetadata/v1/instance/?recursive=true&x=1",
  );
  await expectFlavor(res);
});

Deno.test("a redirect never echoes a malformed Host header", async () => {
  const { handler } = fixture();
  const res = await handler(
    get("/computeMetadata/v1/project", { ...FLAVOR, host: "evil.example/x?y" }),
  );
  assert.equal(res.status, 301);
  assert.equal(res.headers.get("location"), "http://127.0.0.1:8173/computeMetadata/v1/project/");
});

Deno.test("listings end sub-directories with a slash", async () => {
  const { handler } = fixture();
  const cases: Record<string, string> = {
    "/computeMetadata/": "v1/\n",
    "/computeMetadata/v1/": "instance/\nproject/\nuniverse/\n",
    "/computeMetadata/v1/instance/": "attributes/\nhostname\nid\nname\nservice-accounts/\nzone\n",
    "/computeMetadata/v1/project/": "attributes/\nnumeric-project-id\nproject-id\n",
    "/computeMetadata/v1/instance/service-accounts/": `default/\n${SA}/\n`,
    "/computeMetadata/v1/instance/service-accounts/default/":
      "aliases\nemail\nidentity\nscopes\ntoken\n",
  };
  for (const [path, want] of Object.entries(cases)) {
    const res = await handler(get(path));
    assert.equal(res.status, 200, path);
    assert.equal(await expectFlavor(res), want, path);
    assert.equal(res.headers.get("content-type"), "application/text");
  }
});

Deno.test("leaf values match GCE's, numeric project id is digits only", async () => {
  const { handler } = fixture();
  const cases: Record<string, string> = {
    "/computeMetadata/v1/project/project-id": "demo-project",
    "/computeMetadata/v1/project/numeric-project-id": "123456789012",
    "/computeMetadata/v1/universe/universe-domain": "googleapis.com",
    "/computeMetadata/v1/universe/universe_domain": "googleapis.com",
    "/computeMetadata/v1/instance/zone": "projects/123456789012/zones/us-central1-a",
    "/computeMetadata/v1/instance/name": "gcp-metadata-proxy",
    "/computeMetadata/v1/instance/hostname":
      "gcp-metadata-proxy.us-central1-a.c.demo-project.internal",
    "/computeMetadata/v1/instance/service-accounts/default/email": SA,
    [`/computeMetadata/v1/instance/service-accounts/${SA}/email`]: SA,
    [`/computeMetadata/v1/instance/service-accounts/${encodeURIComponent(SA)}/aliases`]: "default",
  };
  for (const [path, want] of Object.entries(cases)) {
    const res = await handler(get(path));
    assert.equal(res.status, 200, path);
    assert.equal(await expectFlavor(res), want, path);
  }
  const id = await (await handler(get("/computeMetadata/v1/instance/id"))).text();
  assert.match(id, /^\d+$/);
  assert.ok(Number.isSafeInteger(Number(id)));
});

Deno.test("?recursive=true answers GCE's camelCase JSON", async () => {
  const { handler } = fixture();
  const res = await handler(get("/computeMetadata/v1/instance/service-accounts/?recursive=true"));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/json");
  const sa = {
    aliases: ["default"],
    email: SA,
    scopes: ["https://www.googleapis.com/auth/cloud-platform"],
  };
  assert.deepEqual(await res.json(), { default: sa, [SA]: sa });
  const p = await (await handler(get("/computeMetadata/v1/project/?recursive=true"))).json();
  assert.deepEqual(p, {
    attributes: {},
    numericProjectId: 123456789012,
    projectId: "demo-project",
  });
  const all = await (await handler(get("/computeMetadata/v1/?recursive=TRUE"))).json();
  assert.equal(all.instance.zone, "projects/123456789012/zones/us-central1-a");
  assert.deepEqual(all.universe, { universeDomain: "googleapis.com" });
  assert.deepEqual(all.instance.serviceAccounts.default, sa);
});

Deno.test("token honours ?scopes= and ignores unknown parameters", async () => {
  const { handler, calls } = fixture();
  const res = await handler(
    get("/computeMetadata/v1/instance/service-accounts/default/token?scopes=b,a&foo=bar"),
  );
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/json");
  const body = await res.json();
  assert.deepEqual(body, { access_token: "ya29.t1", expires_in: 3600, token_type: "Bearer" });
  assert.deepEqual(calls, ["token:a b"]);
  const bad = await handler(
    get("/computeMetadata/v1/instance/service-accounts/default/token?scopes=a%20b%00"),
  );
  assert.equal(bad.status, 400);
});

Deno.test("1000 concurrent token requests cost one gate call", async () => {
  const { handler, calls } = fixture();
  const path = "/computeMetadata/v1/instance/service-accounts/default/token";
  const answers = await Promise.all(Array.from({ length: 1000 }, () => handler(get(path))));
  assert.ok(answers.every((r) => r.status === 200));
  await Promise.all(answers.map((r) => r.body?.cancel()));
  assert.equal(calls.filter((c) => c.startsWith("token:")).length, 1);
});

Deno.test("tokens are refreshed 5 minutes before expiry and expires_in stays above 300", async () => {
  const { handler, calls, clock } = fixture();
  const path = "/computeMetadata/v1/instance/service-accounts/default/token";
  await (await handler(get(path))).text();
  clock.now += (3600 - 302) * 1000;
  const late = await (await handler(get(path))).json();
  assert.ok(late.expires_in > 300, String(late.expires_in));
  assert.equal(calls.length, 1);
  clock.now += 1500;
  const fresh = await (await handler(get(path))).json();
  assert.equal(fresh.access_token, "ya29.t2");
  assert.equal(calls.length, 2);
});

Deno.test("gate down: a valid cached token keeps being served, otherwise 503", async () => {
  const { handler, clock, failGate } = fixture();
  const path = "/computeMetadata/v1/instance/service-accounts/default/token";
  await (await handler(get(path))).text();
  failGate(true);
  clock.now += (3600 - 100) * 1000; // due for refresh, not expired
  const res = await handler(get(path));
  assert.equal(res.status, 200);
  assert.equal((await res.json()).access_token, "ya29.t1");
  const other = await handler(
    get(`${path}?scopes=https://www.googleapis.com/auth/devstorage.read_only`),
  );
  assert.equal(other.status, 503);
  const body = await expectFlavor(other);
  assert.match(body, /^Service Unavailable: gate socket not found\n$/);
  clock.now += 200 * 1000; // expired
  assert.equal((await handler(get(path))).status, 503);
});

Deno.test("identity needs an audience and parses an unencoded one leniently", async () => {
  const { handler, calls } = fixture();
  const base = "/computeMetadata/v1/instance/service-accounts/default/identity";
  const missing = await handler(get(base));
  assert.equal(missing.status, 400);
  assert.match(await expectFlavor(missing), /audience/);
  const res = await handler(
    get(`${base}?audience=https://svc.example.com/a?b=c&d=e&format=full&licenses=TRUE`),
  );
  assert.equal(res.status, 200);
  const jwt = await res.text();
  assert.equal(jwt.split(".").length, 3);
  assert.deepEqual(calls, ["identityToken:https://svc.example.com/a?b=c&d=e|full|true"]);
  // Cached until 5 minutes before its exp.
  await (await handler(
    get(`${base}?audience=https://svc.example.com/a?b=c&d=e&format=full&licenses=TRUE`),
  )).text();
  assert.equal(calls.length, 1);
  const enc = await handler(get(`${base}?audience=${encodeURIComponent("https://x.test/?q=1")}`));
  assert.equal(enc.status, 200);
  assert.equal(calls.at(-1), "identityToken:https://x.test/?q=1|standard|false");
  const badFormat = await handler(get(`${base}?audience=x&format=weird`));
  assert.equal(badFormat.status, 400);
});

Deno.test("methods other than GET/HEAD get 405; HEAD gets headers only", async () => {
  const { handler } = fixture();
  for (const method of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
    const res = await handler(get("/computeMetadata/v1/project/project-id", FLAVOR, method));
    assert.equal(res.status, 405, method);
    await expectFlavor(res);
  }
  const head = await handler(get("/computeMetadata/v1/project/project-id", FLAVOR, "HEAD"));
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
  assert.ok(head.headers.get("etag"));
});

Deno.test("unknown paths, empty segments and leaf-with-slash are 404 with the flavor header", async () => {
  const { handler } = fixture();
  for (
    const path of [
      "/nope",
      "/computeMetadata/v2/",
      "/computeMetadata/v1/instance//zone",
      "/computeMetadata/v1/project/project-id/",
      "/computeMetadata/v1/instance/service-accounts/other@x.iam.gserviceaccount.com/token",
      "/computeMetadata/v1/instance/service-accounts/default/token/x",
      "/computeMetadata/v1/instance/attributes/ssh-keys",
    ]
  ) {
    const res = await handler(get(path));
    assert.equal(res.status, 404, path);
    await expectFlavor(res);
  }
});

Deno.test("oversized URLs and too many parameters are refused", async () => {
  const { handler, calls } = fixture();
  const long = await handler(get(`/computeMetadata/v1/project/project-id?x=${"a".repeat(3000)}`));
  assert.equal(long.status, 414);
  const many = Array.from({ length: 40 }, (_, i) => `p${i}=1`).join("&");
  const res = await handler(get(`/computeMetadata/v1/project/project-id?${many}`));
  assert.equal(res.status, 400);
  assert.deepEqual(calls, []);
});

Deno.test("responses carry an ETag; wait_for_change with a stale ETag answers at once", async () => {
  const { handler } = fixture({ maxWaitSeconds: 60 });
  const path = "/computeMetadata/v1/project/project-id";
  const first = await handler(get(path));
  const etag = first.headers.get("etag");
  assert.match(etag ?? "", /^[0-9a-f]{16}$/);
  await first.text();
  const changed = await handler(get(`${path}?wait_for_change=true&last_etag=0123&timeout_sec=30`));
  assert.equal(await changed.text(), "demo-project");
});

Deno.test("wait_for_change with the current ETag waits at most timeout_sec, ended by the signal", async () => {
  const ac = new AbortController();
  const { handler } = fixture({ maxWaitSeconds: 60, signal: ac.signal });
  const path = "/computeMetadata/v1/project/project-id";
  const etag = (await handler(get(path))).headers.get("etag");
  let done = false;
  const waiting = handler(get(`${path}?wait_for_change=true&last_etag=${etag}&timeout_sec=30`))
    .then((r) => {
      done = true;
      return r;
    });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(done, false, "answered before the value changed or the wait ended");
  ac.abort();
  const res = await waiting;
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "demo-project");
});

Deno.test("email is the configured account, else the account the gate names", async () => {
  const { handler, calls, failGate } = fixture();
  failGate(true);
  const res = await handler(get("/computeMetadata/v1/instance/service-accounts/default/email"));
  assert.equal(await res.text(), SA);
  assert.deepEqual(calls, []);
  const other = fixture({ serviceAccount: undefined });
  for (let i = 0; i < 3; i++) {
    const ok = await other.handler(
      get("/computeMetadata/v1/instance/service-accounts/default/email"),
    );
    assert.equal(await ok.text(), ID_SA);
  }
  // Asked once, then remembered.
  assert.deepEqual(other.calls, ["identity"]);
  // A gate without a dev service account hands out the engineer's own tokens.
  const own = fixture({
    serviceAccount: undefined,
    gate: {
      identity: () => Promise.resolve({ email: "engineer@example.com", service_account: null }),
      projectNumber: () => Promise.reject(new GateError("not_found", "n/a")),
      universeDomain: () => Promise.reject(new GateError("not_found", "n/a")),
      identityToken: () => Promise.reject(new GateError("not_found", "no ID tokens here")),
    },
  });
  const engineer = await own.handler(
    get("/computeMetadata/v1/instance/service-accounts/default/email"),
  );
  assert.equal(await engineer.text(), "engineer@example.com");
  const down = fixture({ serviceAccount: undefined });
  down.failGate(true);
  const res2 = await down.handler(
    get("/computeMetadata/v1/instance/service-accounts/default/email"),
  );
  assert.equal(res2.status, 503);
  await res2.text();
});

Deno.test("jwtExpiry() reads exp, and 0 for garbage", () => {
  assert.equal(jwtExpiry(fakeJwt({ exp: 10 })), 10_000);
  assert.equal(jwtExpiry("not-a-jwt"), 0);
  assert.equal(jwtExpiry("a.!!!.c"), 0);
});

Deno.test("dot segments and backslashes are refused, not normalised", async () => {
  const { handler } = fixture();
  for (
    const path of [
      "/computeMetadata/v1/instance/../project/project-id",
      "/computeMetadata/v1/./project/project-id",
      "/computeMetadata/v1/%2e%2e/v1/project/project-id",
      "/computeMetadata/v1/project/%2E/project-id",
    ]
  ) {
    // Request() keeps the raw target only when built from a string the
    // parser does not touch, so hand it over as Deno.serve would.
    const req = new Request(`${BASE}${path}`, { headers: FLAVOR });
    Object.defineProperty(req, "url", { value: `${BASE}${path}` });
    const res = await handler(req);
    assert.equal(res.status, 400, path);
    await res.text();
  }
});

Deno.test("while the gate is down, the same warning is logged at most once per 30 s", async () => {
  const lines: string[] = [];
  const { handler, clock, failGate } = fixture({
    log: createLogger({ level: "debug", write: (l) => lines.push(l) }),
  });
  failGate(true);
  const path = "/computeMetadata/v1/instance/service-accounts/default/token";
  for (let i = 0; i < 50; i++) assert.equal((await handler(get(path))).status, 503);
  assert.equal(lines.length, 1, lines.join("\n"));
  clock.now += 31_000;
  await (await handler(get(path))).text();
  assert.equal(lines.length, 2);
});

Deno.test("a Host a metadata client would not send is refused (DNS rebinding), the usual ones work", async () => {
  const { handler } = fixture();
  for (
    const host of [
      "attacker.example",
      "attacker.example:8173",
      "127.0.0.1.nip.io",
      "localhost.evil",
    ]
  ) {
    const res = await handler(
      new Request(`http://${host}/computeMetadata/v1/instance/service-accounts/default/token`, {
        headers: FLAVOR,
      }),
    );
    assert.equal(res.status, 403, host);
    assert.match(await expectFlavor(res), /unexpected Host/);
  }
  for (
    const host of [
      "127.0.0.1:8173",
      "localhost:8173",
      "metadata.google.internal",
      "169.254.169.254",
      "[::1]:8173",
    ]
  ) {
    const res = await handler(
      new Request(`http://${host}/computeMetadata/v1/project/project-id`, { headers: FLAVOR }),
    );
    assert.equal(res.status, 200, host);
    await res.text();
  }
});
