/**
 * The gate's API through the built dist/bin/gcp-gate launcher, against the
 * fake Google: what each endpoint answers and what it sent upstream.
 */
import assert from "node:assert/strict";
import { createGateClient } from "../shared/gate_client.ts";
import { GateError } from "../shared/errors.ts";
import { assertNoSecrets, DEV_SA, startStack } from "./_utils.ts";
import { FAKE_ENGINEER, FAKE_TOKEN_PREFIX } from "./fakes/google.ts";

Deno.test("gcp-gate serves identity, project number, universe domain and ID tokens", async () => {
  await using stack = await startStack({ proxy: false });
  const gate = createGateClient({ socketPath: stack.socketPath });
  try {
    assert.deepEqual(await gate.identity(), { email: FAKE_ENGINEER, service_account: DEV_SA });
    assert.deepEqual(await gate.identity(), { email: FAKE_ENGINEER, service_account: DEV_SA });
    assert.equal(stack.fake.count(/\/tokeninfo$/), 1, "the email is cached");

    assert.deepEqual(await gate.projectNumber(), {
      project_id: "demo-project",
      project_number: "123456789012",
    });
    await gate.projectNumber("demo-project");
    assert.equal(stack.fake.count(/GET \/crm\/v3\/projects\/demo-project$/), 1, "cached");
    const other = await gate.projectNumber("other-project").catch((e) => e);
    assert.ok(other instanceof GateError);
    assert.equal(other.code, "upstream");
    assert.match(other.message, /other-project/);

    assert.deepEqual(await gate.universeDomain(), { universe_domain: "googleapis.com" });

    const id = await gate.identityToken({ audience: "https://svc.example.com", format: "full" });
    const claims = JSON.parse(
      atob(id.id_token.split(".")[1]!.replaceAll("-", "+").replaceAll("_", "/")),
    );
    assert.equal(claims.aud, "https://svc.example.com");
    assert.equal(claims.email, DEV_SA);
    await gate.identityToken({ audience: "https://svc.example.com", format: "full" });
    assert.equal(stack.fake.count(/:generateIdToken$/), 1, "ID tokens are cached per audience");
    const sent = stack.fake.requests.find((r) => r.path.endsWith(":generateIdToken"));
    assert.deepEqual(JSON.parse(sent!.body), {
      audience: "https://svc.example.com",
      includeEmail: true,
    });

    const t = await gate.token({ scopes: ["https://www.googleapis.com/auth/cloud-platform"] });
    assert.ok(t.access_token.startsWith(FAKE_TOKEN_PREFIX));
    assert.equal(t.token_type, "Bearer");
    assert.ok(t.expires_in > 3000 && t.expires_in <= 3600);
  } finally {
    gate.close();
  }
  assertNoSecrets(stack.logs(), stack.fake, "gate log");
});

/** A raw request over the gate socket (so tests control headers and methods). */
async function rawFetch(
  socketPath: string,
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: socketPath } });
  try {
    const res = await fetch(`http://gate.invalid${path}`, { ...init, client });
    return { status: res.status, body: await res.json(), headers: res.headers };
  } finally {
    client.close();
  }
}

const PROTO = { "x-gcp-gate-protocol": "1" };

Deno.test("gcp-gate: 100 concurrent cold /token requests cost exactly one call to Google", async () => {
  await using stack = await startStack({ proxy: false });
  // Slow the mint down so every request arrives while it is in flight.
  stack.fake.inject({ match: /:generateAccessToken$/, delayMs: 300 });
  const clients = Array.from(
    { length: 4 },
    () => createGateClient({ socketPath: stack.socketPath }),
  );
  try {
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => clients[i % 4]!.token({ ttlSeconds: 1800 })),
    );
    assert.equal(new Set(results.map((r) => r.access_token)).size, 1);
    assert.equal(stack.fake.count(/:generateAccessToken$/), 1, stack.logs());
    const sent = stack.fake.requests.find((r) => r.path.endsWith(":generateAccessToken"))!;
    assert.ok(sent.path.includes(encodeURIComponent(DEV_SA)));
    assert.deepEqual(JSON.parse(sent.body), {
      scope: ["https://www.googleapis.com/auth/cloud-platform"],
      lifetime: "1800s",
    });
    // Scope order and duplicates do not cost another token; another ttl does.
    const a = "https://www.googleapis.com/auth/a";
    const b = "https://www.googleapis.com/auth/b";
    const t1 = await clients[0]!.token({ scopes: [a, b] });
    const t2 = await clients[1]!.token({ scopes: [b, a, b] });
    assert.equal(t1.access_token, t2.access_token);
    await clients[0]!.token({ scopes: [a, b], ttlSeconds: 600 });
    assert.equal(stack.fake.count(/:generateAccessToken$/), 3);
  } finally {
    for (const c of clients) c.close();
  }
});

Deno.test("gcp-gate: unknown path 404, wrong method 405, missing protocol header 400, all JSON", async () => {
  await using stack = await startStack({ proxy: false });
  const nf = await rawFetch(stack.socketPath, "/nope", { headers: PROTO });
  assert.equal(nf.status, 404);
  assert.equal(nf.body.code, "not_found");
  const wm = await rawFetch(stack.socketPath, "/token", { method: "POST", headers: PROTO });
  assert.equal(wm.status, 405);
  assert.equal(wm.body.code, "method_not_allowed");
  assert.equal(wm.headers.get("allow"), "GET");
  const del = await rawFetch(stack.socketPath, "/health", { method: "DELETE" });
  assert.equal(del.status, 405);
  const np = await rawFetch(stack.socketPath, "/token");
  assert.equal(np.status, 400);
  assert.equal(np.body.code, "protocol_mismatch");
  assert.match(String(np.body.error), /x-gcp-gate-protocol/);
  const wrong = await rawFetch(stack.socketPath, "/identity", {
    headers: { "x-gcp-gate-protocol": "7" },
  });
  assert.equal(wrong.body.code, "protocol_mismatch");
  const health = await rawFetch(stack.socketPath, "/health");
  assert.equal(health.status, 200);
  assert.equal(health.body.status, "ok");
  assert.equal(typeof health.body.uptime_seconds, "number");
  assert.match(String(health.body.version), /^\d+\.\d+\.\d+/);
  assert.equal(stack.fake.count(/./), 0, "no request reached Google");
});
