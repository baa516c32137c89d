import assert from "node:assert/strict";
import type { GoogleApi, MintedToken } from "./google_api.ts";
import { createDevTokenMinter, devTokenKey, needsRefresh } from "./tokens.ts";
import { stubGoogleApi } from "./_prod_fakes.ts";

/** A GoogleApi whose generateAccessToken is controlled by the test. */
function fakeApi(mint: GoogleApi["generateAccessToken"]): GoogleApi {
  return stubGoogleApi({ generateAccessToken: mint });
}

const SA = "dev@p.iam.gserviceaccount.com";

Deno.test("needsRefresh() refreshes at min(5 min, 10 % of the lifetime) before expiry", () => {
  const hour = { token: "t", issuedAt: 0, expiresAt: 3600_000 };
  assert.equal(needsRefresh(hour, 3600_000 - 300_001), false);
  assert.equal(needsRefresh(hour, 3600_000 - 300_000), true);
  const tenMin = { token: "t", issuedAt: 0, expiresAt: 600_000 };
  assert.equal(needsRefresh(tenMin, 600_000 - 60_001), false);
  assert.equal(needsRefresh(tenMin, 600_000 - 60_000), true);
});

Deno.test("devTokenKey() ignores scope order and duplicates but not the ttl", () => {
  assert.equal(
    devTokenKey({ scopes: ["b", "a", "b"], ttlSeconds: 60 }),
    devTokenKey({ scopes: ["a", "b"], ttlSeconds: 60 }),
  );
  assert.notEqual(
    devTokenKey({ scopes: ["a"], ttlSeconds: 60 }),
    devTokenKey({ scopes: ["a"], ttlSeconds: 61 }),
  );
});

Deno.test("mintDevToken shares one upstream call between 100 concurrent misses", async () => {
  let calls = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const minter = createDevTokenMinter({
    api: fakeApi(async (source, sa, scopes, lifetime) => {
      calls++;
      assert.equal(source, "adc-token");
      assert.equal(sa, SA);
      assert.deepEqual(scopes, ["s"]);
      assert.equal(lifetime, 600);
      await gate;
      return { token: "minted", expiresAt: Date.now() + 600_000 };
    }),
    source: () => Promise.resolve("adc-token"),
    serviceAccount: SA,
  });
  const all = Promise.all(
    Array.from({ length: 100 }, () => minter.get({ scopes: ["s"], ttlSeconds: 600 })),
  );
  release();
  const results = await all;
  assert.equal(calls, 1);
  assert.equal(results.filter((r) => !r.cached).length, 1, "one caller started the mint");
  const hit = await minter.get({ scopes: ["s"], ttlSeconds: 600 });
  assert.equal(hit.cached, true);
  assert.equal(calls, 1);
});

Deno.test("a caller that gives up stops waiting; the shared mint still lands in the cache", async () => {
  let calls = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const minter = createDevTokenMinter({
    api: fakeApi(async () => {
      calls++;
      await gate;
      return { token: "minted", expiresAt: Date.now() + 3600_000 };
    }),
    source: () => Promise.resolve("adc"),
    serviceAccount: SA,
  });
  const ac = new AbortController();
  const leaving = minter.get({ scopes: ["s"], ttlSeconds: 3600 }, ac.signal);
  const staying = minter.get({ scopes: ["s"], ttlSeconds: 3600 });
  ac.abort(new Error("client went away"));
  await assert.rejects(leaving, /client went away/);
  release();
  assert.equal((await staying).token, "minted");
  assert.equal((await minter.get({ scopes: ["s"], ttlSeconds: 3600 })).cached, true);
  assert.equal(calls, 1);
});

Deno.test("reset() during a mint keeps that token out of the cache (re-login)", async () => {
  let n = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const minter = createDevTokenMinter({
    api: fakeApi(async () => {
      n++;
      if (n === 1) await gate;
      return { token: `t${n}`, expiresAt: Date.now() + 3600_000 } satisfies MintedToken;
    }),
    source: () => Promise.resolve("adc"),
    serviceAccount: SA,
  });
  const first = minter.get({ scopes: ["s"], ttlSeconds: 3600 });
  minter.reset();
  release();
  assert.equal((await first).token, "t1");
  assert.equal((await minter.get({ scopes: ["s"], ttlSeconds: 3600 })).token, "t2");
});

Deno.test("a token due for refresh is re-minted; without service_account the error says what to set", async () => {
  let now = 0;
  let n = 0;
  const minter = createDevTokenMinter({
    api: fakeApi(() => {
      n++;
      return Promise.resolve({ token: `t${n}`, expiresAt: now + 3600_000 });
    }),
    source: () => Promise.resolve("adc"),
    serviceAccount: SA,
    now: () => now,
  });
  assert.equal((await minter.get({ scopes: ["s"], ttlSeconds: 3600 })).token, "t1");
  now = 3600_000 - 299_000;
  assert.equal((await minter.get({ scopes: ["s"], ttlSeconds: 3600 })).token, "t2");

  const none = createDevTokenMinter({
    api: fakeApi(() => Promise.reject(new Error("unreachable"))),
    source: () => Promise.resolve("adc"),
    serviceAccount: undefined,
  });
  await assert.rejects(none.get({ scopes: ["s"], ttlSeconds: 60 }), /set service_account/);
});
