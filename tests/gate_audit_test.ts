/**
 * The audit log of the built gate: one line per decision, cache hits counted
 * in summaries, size-based rotation, private file, never a token.
 */
import assert from "node:assert/strict";
import { createGateClient } from "../shared/gate_client.ts";
import { assertNoSecrets, startStack } from "./_utils.ts";
import { FAKE_ENGINEER } from "./fakes/google.ts";

function readLines(path: string): Record<string, unknown>[] {
  return Deno.readTextFileSync(path).split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

Deno.test("gcp-gate audits a minted dev token once and summarises cache hits", async () => {
  await using stack = await startStack({ proxy: false });
  const audit = `${stack.home}/.local/state/gcp-gate/audit.log`;
  const gate = createGateClient({ socketPath: stack.socketPath });
  try {
    for (let i = 0; i < 25; i++) await gate.token();
  } finally {
    gate.close();
  }
  stack.gate.kill("SIGTERM");
  await stack.gate.status;
  const lines = readLines(audit);
  const granted = lines.filter((l) => l.endpoint === "/token" && l.cache_hits === undefined);
  assert.equal(granted.length, 1, JSON.stringify(lines));
  assert.equal(granted[0]!.result, "granted");
  assert.equal(granted[0]!.level, "dev");
  assert.equal(granted[0]!.email, FAKE_ENGINEER, "dev decisions name the engineer too");
  assert.deepEqual(granted[0]!.scopes, ["https://www.googleapis.com/auth/cloud-platform"]);
  assert.equal(granted[0]!.ttl_seconds, 3600);
  assert.ok(typeof granted[0]!.time === "string" && !Number.isNaN(Date.parse(granted[0]!.time)));
  const summary = lines.find((l) => l.cache_hits !== undefined);
  assert.equal(summary?.cache_hits, 24, JSON.stringify(lines));
  assert.equal(summary?.endpoint, "/token");
  assert.equal(Deno.statSync(audit).mode! & 0o777, 0o600);
  assert.equal(Deno.statSync(`${stack.home}/.local/state/gcp-gate`).mode! & 0o777, 0o700);
  assertNoSecrets(Deno.readTextFileSync(audit), stack.fake, "audit log");
});

Deno.test("gcp-gate rotates the audit log by size and keeps audit_keep old files", async () => {
  await using stack = await startStack({
    proxy: false,
    gateToml: "audit_max_bytes = 4096\naudit_keep = 2",
  });
  const audit = `${stack.home}/.local/state/gcp-gate/audit.log`;
  const gate = createGateClient({ socketPath: stack.socketPath });
  try {
    // Each distinct ttl is a new mint, so a new audit line (~170 bytes).
    for (let ttl = 60; ttl < 160; ttl++) await gate.token({ ttlSeconds: ttl });
  } finally {
    gate.close();
  }
  stack.gate.kill("SIGTERM");
  await stack.gate.status;
  const all = [audit, `${audit}.1`, `${audit}.2`];
  for (const f of all) {
    assert.ok(Deno.statSync(f).size <= 4096 + 512, `${f} stays near audit_max_bytes`);
    assert.equal(Deno.statSync(f).mode! & 0o777, 0o600);
  }
  assert.throws(() => Deno.statSync(`${audit}.3`), Deno.errors.NotFound, "only 2 kept");
  // The newest entries are in the live file, in order.
  const ttls = readLines(audit).map((l) => l.ttl_seconds as number);
  assert.equal(ttls.at(-1), 159);
});
