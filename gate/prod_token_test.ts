import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import { fakeProdState } from "./_prod_fakes.ts";
import { openSession } from "./prod_session.ts";
import { oneOffToken, sessionToken } from "./prod_token.ts";

const signal = new AbortController().signal;
const REQ = {
  command: ["deploy"],
  notes: [],
  reason: "why",
  project: "p",
  scopes: ["s1", "s2"],
  ttlSeconds: 1200,
  code: "K7P-QX2",
};

Deno.test("sessionToken() refuses a scope the session was not approved for", async () => {
  const { state, minted } = fakeProdState();
  const s = await openSession(state, REQ, { signal });
  await assert.rejects(
    sessionToken(state, s.session_id, { ask: { scopes: ["s3"], ttlSeconds: undefined }, signal }),
    (e) => e instanceof GateError && e.code === "forbidden" && e.message.includes('"s3"'),
  );
  assert.equal(minted.length, 0);
});

Deno.test("sessionToken() audits a new token once and counts its reuse", async () => {
  const { state, audit } = fakeProdState();
  const s = await openSession(state, REQ, { signal });
  const ask = { scopes: ["s2", "s1"], ttlSeconds: undefined };
  const a = await sessionToken(state, s.session_id, { ask, signal });
  const b = await sessionToken(state, s.session_id, {
    ask: { ...ask, scopes: ["s1", "s2"] },
    signal,
  });
  assert.equal(a, b, "scope order shares one token");
  assert.equal(audit.entries.filter((e) => e.endpoint === "/token").length, 1);
  assert.deepEqual(audit.hits, ["/token?session"]);
});

Deno.test("sessionToken() never mints past the session's end", async () => {
  const { state, minted, clock } = fakeProdState();
  const s = await openSession(state, REQ, { signal });
  clock.t += (1200 - 90) * 1000;
  await sessionToken(state, s.session_id, {
    ask: { scopes: undefined, ttlSeconds: undefined },
    signal,
  });
  assert.equal(minted[0]!.lifetime, 90);
});

Deno.test("oneOffToken() is refused under require_reason before anyone is asked", async () => {
  let asked = 0;
  const { state } = fakeProdState({
    requireReason: true,
    approver: {
      decide: () => {
        asked++;
        return Promise.reject(new Error("unreachable"));
      },
    },
  });
  await assert.rejects(
    oneOffToken(state, { scopes: ["s1"], ttlSeconds: 600 }, signal),
    (e) => e instanceof GateError && e.code === "forbidden",
  );
  assert.equal(asked, 0);
});

Deno.test("oneOffToken() mints with its approval's request reason and keeps nothing cached", async () => {
  const { state, minted, audit } = fakeProdState();
  const t = await oneOffToken(state, { scopes: ["s1"], ttlSeconds: 7200 }, signal);
  assert.equal(t.token, "prod-1");
  assert.equal(minted[0]!.lifetime, 600, "capped at prod_token_ttl_seconds");
  assert.match(minted[0]!.reason ?? "", /abcd1234/);
  assert.equal(state.cache.size, 0);
  assert.equal(audit.entries.at(-1)!.result, "granted");
});
