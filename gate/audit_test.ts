import assert from "node:assert/strict";
import { createLogger } from "../shared/log.ts";
import { createAuditLog, decisionsPath, rotateFiles } from "./audit.ts";
import { GENESIS, lineHash, readHead } from "./audit_file.ts";
import { AUDIT_COMMAND_CAPS, FOLD_AFTER } from "./audit_line.ts";

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
      // The chain fields come last; the first line of a new chain names no predecessor.
      seq: 1,
      prev: GENESIS,
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

Deno.test("audit: a long command is capped in the line, keeping its size and a hash", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/audit.log`;
    const audit = createAuditLog({ path, maxBytes: 1 << 20, keep: 2, log: quiet });
    const command = Array.from({ length: 300 }, (_, i) => `${i}`.padEnd(2000, "x"));
    audit.record({ endpoint: "/session", level: "prod", result: "granted", command });
    audit.record({ endpoint: "/session", level: "prod", result: "granted", command: ["ls"] });
    await audit.close();
    const text = Deno.readTextFileSync(path);
    const [long, short] = lines(path);
    assert.ok(text.split("\n")[0]!.length < 12_000, `${text.split("\n")[0]!.length}`);
    assert.equal((long!.command as string[]).length, AUDIT_COMMAND_CAPS.maxArgs);
    assert.equal((long!.command as string[])[0]!.length, AUDIT_COMMAND_CAPS.maxArgChars);
    assert.equal(long!.command_args, 300);
    assert.equal(long!.command_chars, 600_000);
    assert.match(long!.command_sha256 as string, /^[0-9a-f]{64}$/);
    assert.deepEqual(short!.command, ["ls"]);
    assert.equal(short!.command_sha256, undefined, "an uncut command needs no hash");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("audit: repeated rejections are written FOLD_AFTER times, then counted in a summary", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/audit.log`;
    const audit = createAuditLog({ path, maxBytes: 1 << 20, keep: 2, log: quiet });
    for (let i = 0; i < 1000; i++) {
      audit.record({
        endpoint: "/session",
        level: "prod",
        result: "rate_limited",
        code: "rate_limited",
      });
    }
    audit.record({ endpoint: "/session", level: "prod", result: "granted", session: "abcd1234" });
    await audit.close();
    const got = lines(path);
    const limited = got.filter((l) => l.result === "rate_limited");
    assert.equal(limited.filter((l) => l.repeats === undefined).length, FOLD_AFTER);
    assert.deepEqual(limited.filter((l) => l.repeats !== undefined).map((l) => l.repeats), [
      1000 - FOLD_AFTER,
    ]);
    assert.equal(got.length, FOLD_AFTER + 2);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("audit: prod decisions also go to their own file, which junk never rotates", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/audit.log`;
    const audit = createAuditLog({ path, maxBytes: 4096, keep: 1, log: quiet });
    audit.record({ endpoint: "/session", level: "prod", result: "granted", session: "abcd1234" });
    await audit.flush();
    for (let i = 0; i < 500; i++) {
      audit.record({
        endpoint: "/identity-token",
        level: "dev",
        result: "granted",
        audience: `a${i}`,
      });
      await audit.flush();
    }
    audit.record({ endpoint: "/session", level: "prod", result: "revoked", session: "abcd1234" });
    audit.record({ endpoint: "/session", level: "prod", result: "denied", command: ["rm", "-rf"] });
    await audit.close();
    const main = [...lines(path), ...lines(`${path}.1`)];
    assert.ok(!main.some((l) => l.session === "abcd1234" && l.result === "granted"), "rotated out");
    const decisions = lines(decisionsPath(path));
    assert.deepEqual(decisions.map((l) => [l.result, l.seq]), [
      ["granted", 1],
      ["revoked", 2],
      ["denied", 3],
    ]);
    // A denial took a human (or an unanswered timeout): its command is kept there too.
    assert.deepEqual(decisions[2]!.command, ["rm", "-rf"]);
    assert.deepEqual(lines(path).at(-1)!.command, ["rm", "-rf"]);
    assert.equal(Deno.statSync(decisionsPath(path)).mode! & 0o777, 0o600);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("audit: the chain runs on across rotation and across a restart; the head file is private", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/audit.log`;
    for (let run = 0; run < 2; run++) {
      const audit = createAuditLog({ path, maxBytes: 4096, keep: 5, log: quiet });
      for (let i = 0; i < 40; i++) {
        audit.record({ endpoint: "/token", level: "dev", result: "granted", scopes: [`s${i}`] });
        await audit.flush();
      }
      await audit.close();
    }
    const files = [5, 4, 3, 2, 1].map((n) => `${path}.${n}`).filter((f) => {
      try {
        return Deno.statSync(f).isFile;
      } catch {
        return false;
      }
    });
    assert.ok(files.length >= 2, "rotated at least twice");
    const texts = [...files, path].flatMap((f) =>
      Deno.readTextFileSync(f).split("\n").filter((l) => l)
    );
    assert.equal(texts.length, 80);
    for (let i = 1; i < texts.length; i++) {
      const line = JSON.parse(texts[i]!) as { seq: number; prev: string };
      assert.equal(line.prev, lineHash(texts[i - 1]!), `line ${i}`);
      assert.equal(line.seq, i + 1);
    }
    const head = readHead(path);
    assert.deepEqual(head, { seq: 80, hash: lineHash(texts.at(-1)!), oldest_seq: 1 });
    assert.equal(Deno.statSync(`${path}.head`).mode! & 0o777, 0o600);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
