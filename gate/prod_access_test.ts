import assert from "node:assert/strict";
import type { ProdAccessProvider } from "./pam/provider.ts";
import { createSessionAccessTable, type OpenAccessOptions } from "./prod_access.ts";

function recordingProvider(hang = false) {
  const calls: string[] = [];
  const provider: ProdAccessProvider = {
    describe: () => Promise.resolve("g"),
    acquire: (ctx) => {
      calls.push(`acquire ${ctx.requestReason}`);
      return Promise.resolve({ label: "G" });
    },
    token: () => Promise.reject(new Error("unused")),
    release: (h, why) => {
      calls.push(`release ${h.label} ${why}`);
      // A release that never ends stands for an upstream that never answers.
      return hang ? new Promise(() => {}) : Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
  return { provider, calls };
}

function opts(expiresInMs: number): OpenAccessOptions {
  return {
    prefix: "ABCDEFGH",
    expiresAt: Date.now() + expiresInMs,
    approvalId: "abcd1234",
    email: "e@x",
    reason: "why",
    code: undefined,
    command: undefined,
    signal: new AbortController().signal,
  };
}

Deno.test("an expired session's access is released without anyone asking", async () => {
  const { provider, calls } = recordingProvider();
  const table = createSessionAccessTable({ provider, log: undefined, now: Date.now });
  const a = await table.open(opts(30));
  assert.equal(a.reason, "gcp-gate approval abcd1234: why");
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual(calls, ["acquire gcp-gate approval abcd1234: why", "release G expired"]);
  assert.equal(table.get("ABCDEFGH"), undefined);
  table.end("ABCDEFGH", "revoked"); // already gone: nothing more happens
  assert.equal(calls.length, 2);
});

Deno.test("close() waits for releases, but no longer than its bound", async () => {
  const { provider, calls } = recordingProvider(true);
  const table = createSessionAccessTable({ provider, log: undefined, now: Date.now });
  await table.open(opts(60_000));
  const t0 = Date.now();
  await table.close(100);
  assert.ok(Date.now() - t0 < 1000, "bounded");
  assert.deepEqual(calls.slice(1), ["release G shutdown"]);
});

Deno.test("without a provider only the request reason is kept", async () => {
  const table = createSessionAccessTable({ provider: undefined, log: undefined, now: Date.now });
  const a = await table.open(opts(60_000));
  assert.deepEqual(a, { reason: "gcp-gate approval abcd1234: why", handle: undefined });
  await table.close(10);
});
