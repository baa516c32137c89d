import assert from "node:assert/strict";
import { fakeProdState } from "./_prod_fakes.ts";
import { dropCachedTokens, mintProdToken } from "./prod_mint.ts";

const signal = new AbortController().signal;
const ASK = { scopes: ["s1"], lifetimeSeconds: 600, signal };

Deno.test("mintProdToken() impersonates the prod account once per key until a refresh is due", async () => {
  const { state, minted, clock } = fakeProdState();
  const a = await mintProdToken(state, { key: "sess1|s1|-", ...ASK });
  const b = await mintProdToken(state, { key: "sess1|s1|-", ...ASK });
  assert.equal(a, b);
  assert.deepEqual(minted, [{
    sa: "prod@p.iam.gserviceaccount.com",
    lifetime: 600,
    reason: undefined,
  }]);
  clock.t += 590_000; // inside the refresh margin (10% of 600 s)
  const c = await mintProdToken(state, { key: "sess1|s1|-", ...ASK });
  assert.notEqual(c.token, a.token);
  assert.equal(minted.length, 2);
});

Deno.test("mintProdToken() shares one upstream call between concurrent misses", async () => {
  const { state, minted } = fakeProdState();
  const [a, b] = await Promise.all([
    mintProdToken(state, { key: "k|", ...ASK }),
    mintProdToken(state, { key: "k|", ...ASK }),
  ]);
  assert.equal(a.token, b.token);
  assert.equal(minted.length, 1);
});

Deno.test("mintProdToken() passes the session's request reason to Google", async () => {
  const { state, minted } = fakeProdState();
  await mintProdToken(state, {
    key: "k|",
    ...ASK,
    access: { reason: "gcp-gate approval abcd1234", handle: undefined },
  });
  assert.equal(minted[0]!.reason, "gcp-gate approval abcd1234");
});

Deno.test("mintProdToken() without a prod account hands out the engineer's own token, uncached", async () => {
  const { state, minted, sources } = fakeProdState({ prodServiceAccount: undefined });
  const a = await mintProdToken(state, { key: "k|", ...ASK });
  await mintProdToken(state, { key: "k|", ...ASK });
  assert.equal(a.token, "adc-1");
  assert.equal(sources.n, 2);
  assert.equal(minted.length, 0);
  assert.equal(state.cache.size, 0);
});

Deno.test("dropCachedTokens() forgets one session's tokens and keeps the others'", async () => {
  const { state } = fakeProdState();
  await mintProdToken(state, { key: "aaaa|s1|-", ...ASK });
  await mintProdToken(state, { key: "aaaa|s1|60", ...ASK });
  await mintProdToken(state, { key: "aaaab|s1|-", ...ASK });
  dropCachedTokens(state, "aaaa");
  assert.deepEqual([...state.cache.keys()], ["aaaab|s1|-"]);
});
