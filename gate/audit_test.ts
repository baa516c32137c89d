import assert from "node:assert/strict";
import { createLogger } from "../shared/log.ts";
import { createAuditLog, rotateFiles } from "./audit.ts";

const quiet = createLogger({ write: () => {} });

function lines(path: string): Record<string, unknown>[] {
  return Deno.readTextFileSync(path).trim().split("\n").map((l) => JSON.parse(l));
}

Deno.test("audit: entries are JSON lines in a private file created on first write", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/state/gcp-gate/audit.log`;
    const audit = createAuditLog({
      path,
      maxBytes: 1 << 20,
      keep: 2,
      log: quiet,
      now: () => new Date("2030-01-01T00:00:00Z"),
    });
    audit.record({ endpoint: "/token", level: "dev", result: "granted", scopes: ["s"] });
    // A token that slipped into a field by mistake is still redacted.
    audit.record({
      endpoint: "/token",
      level: "dev",
      result: "error",
      error: "got ya29.SECRET123",
    });
    await audit.close();
    const got = lines(path);
    assert.deepEqual(got[0], {
      time: "2030-01-01T00:00:00.000Z",
      endpoint: "/token",
      level: "dev",
      result: "granted",
      scopes: ["s"],
    });
    assert.ok(!Deno.readTextFileSync(path).includes("ya29.SECRET123"));
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    assert.equal(Deno.statSync(`${dir}/state/gcp-gate`).mode! & 0o777, 0o700);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("audit: cache hits are counted and summarised, not logged one by one", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/audit.log`;
    const audit = createAuditLog({ path, maxBytes: 1 << 20, keep: 2, log: quiet });
    for (let i = 0; i < 1000; i++) audit.countHit("/token", "dev");
    audit.countHit("/identity-token", "dev");
    await audit.close();
    const got = lines(path);
    assert.equal(got.length, 2);
    assert.equal(got[0]!.cache_hits, 1000);
    assert.equal(got[0]!.endpoint, "/token");
    assert.equal(got[1]!.endpoint, "/identity-token");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("audit: record() never blocks and drops beyond the queue bound, saying so", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/audit.log`;
    const audit = createAuditLog({ path, maxBytes: 1 << 20, keep: 2, log: quiet, maxQueue: 10 });
    for (let i = 0; i < 50; i++) audit.record({ endpoint: "/t", level: "dev", result: "granted" });
    await audit.close();
    const got = lines(path);
    assert.ok(got.some((l) => typeof l.audit_dropped === "number"), "the drop is recorded");
    assert.ok(got.length < 50);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("audit: a write failure is logged once and the gate keeps going", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const messages: string[] = [];
    const log = createLogger({ write: (l) => messages.push(l) });
    Deno.writeTextFileSync(`${dir}/blocker`, "a file where the directory should be");
    const audit = createAuditLog({
      path: `${dir}/blocker/audit.log`,
      maxBytes: 4096,
      keep: 1,
      log,
    });
    audit.record({ endpoint: "/t", level: "dev", result: "granted" });
    await audit.flush();
    audit.record({ endpoint: "/t", level: "dev", result: "granted" });
    await audit.close();
    assert.equal(messages.filter((m) => m.includes("cannot write the audit log")).length, 1);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("rotateFiles() shifts log → .1 → .2 and drops the oldest", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const p = `${dir}/a.log`;
    for (const [f, c] of [[p, "new"], [`${p}.1`, "mid"], [`${p}.2`, "old"]]) {
      Deno.writeTextFileSync(f!, c!);
    }
    rotateFiles(p, 2);
    assert.throws(() => Deno.statSync(p));
    assert.equal(Deno.readTextFileSync(`${p}.1`), "new");
    assert.equal(Deno.readTextFileSync(`${p}.2`), "mid");
    assert.throws(() => Deno.statSync(`${p}.3`));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
