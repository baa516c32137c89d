import assert from "node:assert/strict";
import { GateError } from "../../shared/errors.ts";
import type { Grant, PamClient } from "./client.ts";
import { type AcquireOptions, createGrantLifecycle } from "./lifecycle.ts";

const ENT = "projects/p/locations/global/entitlements/e";

/** A scripted PAM: `states` are what successive reads of the grant return. */
function scripted(o: { existing?: Grant[]; states?: string[]; createFails?: GateError } = {}) {
  const log: string[] = [];
  const states = [...(o.states ?? [])];
  let current: Grant = {
    name: `${ENT}/grants/new`,
    state: "ACTIVATING",
    requestedDuration: "600s",
    justification: "gcp-gate x",
    activatedAt: undefined,
  };
  const client: PamClient = {
    getEntitlement: () => Promise.reject(new Error("unused")),
    createGrant: (_s, _e, g) => {
      log.push(`create ${g.requestId}`);
      if (o.createFails) return Promise.reject(o.createFails);
      current = { ...current, state: states.shift() ?? "ACTIVE" };
      return Promise.resolve(current);
    },
    getGrant: (_s, name) => {
      log.push(`get ${name}`);
      current = { ...current, name, state: states.shift() ?? current.state };
      return Promise.resolve(current);
    },
    searchOwnGrants: () => {
      log.push("search");
      return Promise.resolve(o.existing ?? []);
    },
    withdrawGrant: (_s, name) => {
      log.push(`withdraw ${name}`);
      return Promise.resolve(undefined);
    },
    operationDone: () => Promise.resolve(true),
  };
  return { client, log };
}

function opts(extra: Partial<AcquireOptions> = {}): AcquireOptions {
  return {
    entitlement: ENT,
    durationSeconds: 600,
    justification: "gcp-gate approval 1",
    requestId: "rid",
    requestReason: "r",
    waitMs: 5000,
    signal: new AbortController().signal,
    ...extra,
  };
}

const source = () => Promise.resolve("src");

Deno.test("acquire() reuses an ACTIVE grant of the engineer instead of creating one", async () => {
  const active: Grant = {
    name: `${ENT}/grants/old`,
    state: "ACTIVE",
    requestedDuration: "600s",
    justification: "made in the console",
    activatedAt: 1,
  };
  const { client, log } = scripted({ existing: [active] });
  const lc = createGrantLifecycle({ client, source, pollMs: 1 });
  const got = await lc.acquire(opts());
  assert.equal(got.grant.name, active.name);
  assert.equal(got.created, false, "not ours: it will not be withdrawn");
  assert.deepEqual(log, ["search"]);
});

Deno.test("acquire() creates, reports each state once and waits until ACTIVE", async () => {
  const { client, log } = scripted({
    states: ["APPROVAL_AWAITED", "APPROVAL_AWAITED", "ACTIVATING", "ACTIVE"],
  });
  const seen: string[] = [];
  const progress: string[] = [];
  const lc = createGrantLifecycle({
    client,
    source,
    pollMs: 1,
    onState: (g) => seen.push(g.state),
  });
  const got = await lc.acquire(opts({ onProgress: (m) => progress.push(m) }));
  assert.equal(got.grant.state, "ACTIVE");
  assert.equal(got.created, true);
  assert.deepEqual(seen, ["APPROVAL_AWAITED", "ACTIVATING", "ACTIVE"]);
  assert.equal(progress.length, 2);
  assert.match(progress[0]!, /waiting for a teammate to approve grant/);
  assert.equal(log.filter((l) => l.startsWith("create")).length, 1);
});

Deno.test("acquire() ends a DENIED grant with a denial and does not withdraw it", async () => {
  const { client, log } = scripted({ states: ["APPROVAL_AWAITED", "DENIED"] });
  const lc = createGrantLifecycle({ client, source, pollMs: 1 });
  const err = await lc.acquire(opts()).catch((e) => e);
  assert.ok(err instanceof GateError && err.code === "denied", String(err));
  assert.match(err.message, /DENIED by an approver/);
  assert.ok(!log.some((l) => l.startsWith("withdraw")));
});

Deno.test("acquire() gives up after waitMs and withdraws the grant it created", async () => {
  const { client, log } = scripted({ states: Array(100).fill("APPROVAL_AWAITED") });
  const lc = createGrantLifecycle({ client, source, pollMs: 20 });
  const err = await lc.acquire(opts({ waitMs: 100 })).catch((e) => e);
  assert.ok(err instanceof GateError && err.code === "timeout", String(err));
  assert.match(err.message, /still APPROVAL_AWAITED after 0 s .*it was withdrawn/);
  assert.ok(log.includes(`withdraw ${ENT}/grants/new`));
});

Deno.test("acquire() aborted while waiting withdraws and fails with a GateError", async () => {
  const { client, log } = scripted({ states: Array(100).fill("APPROVAL_AWAITED") });
  const lc = createGrantLifecycle({ client, source, pollMs: 20 });
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error("the gate is shutting down")), 50);
  const err = await lc.acquire(opts({ signal: ac.signal })).catch((e) => e);
  assert.ok(err instanceof GateError && err.code === "timeout", String(err));
  assert.match(err.message, /the caller left or the gate is stopping/);
  assert.ok(log.includes(`withdraw ${ENT}/grants/new`));
});

Deno.test("acquire() after a 409 waits on the open grant someone else made", async () => {
  const pending: Grant = {
    name: `${ENT}/grants/other`,
    state: "APPROVAL_AWAITED",
    requestedDuration: "600s",
    justification: "gcp-gate approval 0",
    activatedAt: undefined,
  };
  let searches = 0;
  const { client } = scripted({
    states: ["ACTIVE"],
    createFails: new GateError("upstream", "open grant", { status: 409 }),
  });
  client.searchOwnGrants = () => Promise.resolve(searches++ === 0 ? [] : [pending]);
  const lc = createGrantLifecycle({ client, source, pollMs: 1 });
  const got = await lc.acquire(opts());
  assert.equal(got.grant.name, pending.name);
  assert.equal(got.grant.state, "ACTIVE");
  assert.equal(got.created, true, "made by gcp-gate (its justification says so)");
});

Deno.test("withdraw() treats an already-ended grant as done", async () => {
  const { client } = scripted();
  client.withdrawGrant = () => Promise.reject(new GateError("upstream", "ENDED", { status: 409 }));
  const lc = createGrantLifecycle({ client, source });
  assert.equal(await lc.withdraw(`${ENT}/grants/g`, "r", 1000), "already ended");
});
