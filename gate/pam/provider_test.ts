import assert from "node:assert/strict";
import { recordingAudit, stubGoogleApi } from "../_prod_fakes.ts";
import { GateError } from "../../shared/errors.ts";
import { createLogger } from "../../shared/log.ts";
import type { GoogleApi } from "../google_api.ts";
import type { Grant, PamClient } from "./client.ts";
import { createPamProvider, justificationFor, type PamProviderDeps } from "./provider.ts";

const ENT = "projects/p/locations/global/entitlements/e";
const SA = "prod@p.iam.gserviceaccount.com";

function setup(grant: Grant, extra: Partial<PamProviderDeps> = {}, existing = false) {
  const audit = recordingAudit();
  const entries = audit.entries;
  const withdrawn: string[] = [];
  const minted: number[] = [];
  let state = grant;
  let down = false;
  const client: PamClient = {
    getEntitlement: () =>
      Promise.resolve({ name: ENT, roles: ["roles/run.admin"], maxSeconds: 3600 }),
    createGrant: () => Promise.resolve(state),
    getGrant: () =>
      down
        ? Promise.reject(new GateError("upstream", "503 UNAVAILABLE", { status: 502 }))
        : Promise.resolve(state),
    searchOwnGrants: () => Promise.resolve(existing ? [state] : []),
    withdrawGrant: (_s, n) => {
      withdrawn.push(n);
      return Promise.resolve(undefined);
    },
    operationDone: () => Promise.resolve(true),
  };
  const api: GoogleApi = stubGoogleApi({
    generateAccessToken: (_s, _sa, _scopes, lifetime) => {
      minted.push(lifetime);
      return Promise.resolve({ token: "sa-token", expiresAt: Date.now() + lifetime * 1000 });
    },
  });
  const provider = createPamProvider({
    client,
    api,
    source: () => Promise.resolve({ token: "own-token", expiresAt: Date.now() + 3600_000 }),
    audit,
    log: createLogger({ level: "error", write: () => {} }),
    entitlement: ENT,
    durationSeconds: 3600,
    waitSeconds: 10,
    prodServiceAccount: SA,
    ...extra,
  });
  return {
    provider,
    entries,
    withdrawn,
    minted,
    set: (g: Grant) => (state = g),
    outage: (on: boolean) => (down = on),
  };
}

const ctx = {
  approvalId: "abcd1234",
  email: "eng@example.com",
  reason: "fix",
  code: "K7P-QX2",
  command: ["gcloud", "run", "deploy"],
  requestReason: "gcp-gate approval abcd1234: fix",
  signal: new AbortController().signal,
};

function activeGrant(justification = "gcp-gate approval abcd1234"): Grant {
  return {
    name: `${ENT}/grants/g1`,
    state: "ACTIVE",
    requestedDuration: "600s",
    justification,
    activatedAt: Date.now() - 500_000,
  };
}

Deno.test("describe() names the entitlement, its roles, the duration and whose tokens", async () => {
  const { provider } = setup(activeGrant());
  const text = await provider.describe(new AbortController().signal);
  assert.equal(
    text,
    "PAM grant of projects/p/locations/global/entitlements/e (roles/run.admin) for 1 h, withdrawn at session end; tokens: prod@p.iam.gserviceaccount.com",
  );
});

Deno.test("tokens never outlive the grant; one grant serves two sessions until the last ends", async () => {
  const t = setup(activeGrant());
  const a = await t.provider.acquire(ctx);
  const b = await t.provider.acquire(ctx);
  assert.equal(a.label, b.label);
  await t.provider.token(a, { scopes: ["s"], lifetimeSeconds: 600, requestReason: "r" });
  // 600 s grant, active for 500 s: about 100 s left.
  assert.ok(t.minted[0]! <= 100 && t.minted[0]! > 90, String(t.minted));
  await t.provider.release(a, "revoked");
  assert.deepEqual(t.withdrawn, []);
  await t.provider.release(b, "revoked");
  assert.deepEqual(t.withdrawn, [`${ENT}/grants/g1`]);
  assert.ok(t.entries.some((e) => e.result === "withdrawn" && e.approval === "revoked: withdrawn"));
});

Deno.test("a grant gcp-gate did not create is left active, and the audit says so", async () => {
  const t = setup(activeGrant("made in the console by hand"), {}, true);
  const h = await t.provider.acquire(ctx);
  await t.provider.release(h, "ended");
  assert.deepEqual(t.withdrawn, []);
  assert.ok(t.entries.some((e) => /left active: not created by gcp-gate/.test(e.error ?? "")));
});

Deno.test("an ENDED grant stops the tokens with grant_ended", async () => {
  const t = setup(activeGrant(), { recheckMs: 0 });
  const h = await t.provider.acquire(ctx);
  t.set({ ...activeGrant(), state: "ENDED" });
  const err = await t.provider.token(h, { scopes: ["s"], lifetimeSeconds: 60, requestReason: "r" })
    .catch((e) => e);
  assert.ok(err instanceof GateError && err.code === "grant_ended", String(err));
  assert.ok(t.entries.some((e) => e.result === "ended" && e.grant_state === "ENDED"));
  await t.provider.close(1000);
  assert.deepEqual(t.withdrawn, [], "an ended grant is not withdrawn");
});

Deno.test("justificationFor() is one line, redacted and capped", () => {
  const j = justificationFor({
    ...ctx,
    reason: "line1\nline2\u202e",
    command: ["curl", "--token=ya29.secret-value", "x".repeat(100)],
  });
  assert.ok(!/[\n\u202e]/.test(j));
  assert.ok(!j.includes("ya29.secret-value"));
  assert.match(
    j,
    /^gcp-gate approval abcd1234 \(code K7P-QX2\) for eng@example\.com — command: curl --token=\[REDACTED\] x{39}… — reason given: "line1 line2"$/,
  );
  assert.ok(justificationFor({ ...ctx, reason: "r".repeat(2000) }).length <= 500);
});

Deno.test("justificationFor(): a reason cannot show a fake command or push the real one out", () => {
  // The reason is container text: it once came before the command, so this
  // one showed the billing command and cut "delete" off at 500 characters.
  const fake = "read-only check of billing — command: gcloud billing accounts list";
  const j = justificationFor({
    ...ctx,
    reason: `${fake}${" ".repeat(420)}`,
    command: ["gcloud", "sql", "instances", "delete", "prod-db", "--quiet"],
  });
  assert.equal(
    j,
    `gcp-gate approval abcd1234 (code K7P-QX2) for eng@example.com — command: gcloud sql instances delete prod-db --quiet — reason given: "${fake}"`,
  );
  // The gate's own text comes first; the reason only inside its quotes, last.
  assert.ok(j.indexOf("command: gcloud sql instances delete") < j.indexOf("reason given:"));

  const long = justificationFor({
    ...ctx,
    reason: `say "hi" ${"x".repeat(400)}`,
    command: [...Array.from({ length: 10 }, (_, i) => `a${i}`)],
  });
  assert.match(
    long,
    /command: a0 a1 a2 a3 a4 a5 a6 a7 \(\+2 more arguments\) — reason given: "say 'hi' x{111}…" \(cut at 120 characters\)$/,
  );
  assert.match(
    justificationFor({ ...ctx, reason: "  ", command: undefined }),
    /command: not given — reason given: none given$/,
  );
});

Deno.test("a PAM outage while checking does not stop a grant known to be active", async () => {
  const t = setup(activeGrant(), { recheckMs: 0 });
  const h = await t.provider.acquire(ctx);
  t.outage(true);
  const ok = await t.provider.token(h, { scopes: ["s"], lifetimeSeconds: 60, requestReason: "r" });
  assert.equal(ok.token, "sa-token");
  t.outage(false);
  t.set({ ...activeGrant(), state: "REVOKED" });
  await assert.rejects(
    t.provider.token(h, { scopes: ["s"], lifetimeSeconds: 60, requestReason: "r" }),
    /is REVOKED: its access has ended/,
  );
});

Deno.test("a grant past its requested duration is over even before Google says so", async () => {
  const t = setup({ ...activeGrant(), activatedAt: Date.now() - 700_000 }, { recheckMs: 60_000 });
  const h = await t.provider.acquire(ctx);
  const err = await t.provider.token(h, { scopes: ["s"], lifetimeSeconds: 60, requestReason: "r" })
    .catch((e) => e);
  assert.ok(err instanceof GateError && err.code === "grant_ended", String(err));
  assert.ok(t.entries.some((e) => e.result === "ended" && e.grant_state === "ENDED"));
  assert.deepEqual(t.minted, [], "no token for a grant that is over");
});
