import assert from "node:assert/strict";
import { createLogger } from "../shared/log.ts";
import { createAuditLog } from "./audit.ts";
import { logFiles, verifyLog } from "./audit_verify.ts";

const quiet = createLogger({ write: () => {} });

/** A log of `n` lines over several rotated files (small maxBytes); returns its path. */
async function writeLog(dir: string, n: number, maxBytes = 4096): Promise<string> {
  const path = `${dir}/audit.log`;
  const audit = createAuditLog({ path, maxBytes, keep: 9, log: quiet, summaryMs: 1 << 30 });
  for (let i = 0; i < n; i++) {
    audit.record({ endpoint: "/token", level: "dev", result: "granted", scopes: [`scope-${i}`] });
    await audit.flush(); // one write per line: rotation falls between lines
  }
  await audit.close();
  return path;
}

function edit(file: string, f: (lines: string[]) => string[]): void {
  const lines = Deno.readTextFileSync(file).split("\n").filter((l) => l !== "");
  Deno.writeTextFileSync(file, f(lines).map((l) => `${l}\n`).join(""));
}

async function withLog(fn: (path: string) => void | Promise<void>): Promise<void> {
  const dir = Deno.makeTempDirSync();
  try {
    await fn(await writeLog(dir, 120));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("verifyLog() passes an untouched log spread over rotated files", async () => {
  await withLog((path) => {
    assert.ok(logFiles(path).length >= 3, "the log rotated");
    const r = verifyLog(path);
    assert.equal(r.problem, undefined);
    assert.equal(r.lines, 120);
    assert.equal(r.firstSeq, 1);
    assert.equal(r.lastSeq, 120);
    assert.deepEqual(r.notes, []);
  });
});

Deno.test("verifyLog() names an edited line", async () => {
  await withLog((path) => {
    edit(`${path}.1`, (l) => l.map((x, i) => (i === 2 ? x.replace("scope-", "scope_") : x)));
    assert.match(verifyLog(path).problem ?? "", /^audit\.log\.1 line 3 \(seq \d+\) was changed/);
  });
});

Deno.test("verifyLog() names a deleted line, also at a rotation boundary", async () => {
  await withLog((path) => {
    edit(`${path}.2`, (l) => l.filter((_, i) => i !== 1));
    assert.match(
      verifyLog(path).problem ?? "",
      /^1 line \(seq \d+\) removed between audit\.log\.2 line 1 and audit\.log\.2 line 2$/,
    );
  });
  await withLog((path) => {
    // The last line of a rotated file: the chain runs into the next file.
    edit(`${path}.1`, (l) => l.slice(0, -1));
    assert.match(
      verifyLog(path).problem ?? "",
      /removed between audit\.log\.1 line \d+ and audit\.log line 1$/,
    );
  });
});

Deno.test("verifyLog() names an inserted line, whether or not it carries chain fields", async () => {
  await withLog((path) => {
    edit(`${path}.1`, (l) => [...l.slice(0, 4), l[3]!, ...l.slice(4)]);
    assert.match(verifyLog(path).problem ?? "", /^audit\.log\.1 line 5 was inserted/);
  });
  await withLog((path) => {
    const forged = JSON.stringify({
      time: "2030-01-01T00:00:00Z",
      endpoint: "/session",
      level: "prod",
      result: "granted",
    });
    edit(path, (l) => [l[0]!, forged, ...l.slice(1)]);
    assert.match(verifyLog(path).problem ?? "", /^audit\.log line 2 is not a chained audit line/);
  });
});

Deno.test("verifyLog() detects a truncated tail and a deleted oldest file from the head file", async () => {
  await withLog((path) => {
    edit(path, (l) => l.slice(0, -2));
    assert.match(
      verifyLog(path).problem ?? "",
      /^truncated: the last 2 lines \(seq 119–120\) the gate wrote are missing/,
    );
  });
  await withLog((path) => {
    Deno.removeSync(logFiles(path)[0]!);
    assert.match(verifyLog(path).problem ?? "", /^the oldest lines \(seq 1–\d+\) are missing/);
  });
  await withLog((path) => {
    // Without the head file the cut is invisible; verify says so.
    edit(path, (l) => l.slice(0, -2));
    Deno.removeSync(`${path}.head`);
    const r = verifyLog(path);
    assert.equal(r.problem, undefined);
    assert.deepEqual(r.notes, ["no head file: a cut-off tail cannot be detected"]);
  });
});

Deno.test("verifyLog() accepts lines written before the chain and chains on from them", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/audit.log`;
    Deno.writeTextFileSync(
      path,
      `{"time":"2029-01-01T00:00:00Z","endpoint":"/token","level":"dev","result":"granted"}\n`,
    );
    const audit = createAuditLog({ path, maxBytes: 1 << 20, keep: 2, log: quiet });
    audit.record({ endpoint: "/token", level: "dev", result: "granted" });
    await audit.close();
    const r = verifyLog(path);
    assert.equal(r.problem, undefined);
    assert.equal(r.unchained, 1);
    edit(path, (l) => [l[0]!.replace("2029", "2028"), l[1]!]);
    assert.match(
      verifyLog(path).problem ?? "",
      /^audit\.log line 2 does not continue from audit\.log line 1/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a gate restarted on a cut log warns, and continues the chain from its head so the cut stays visible", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = await writeLog(dir, 10, 1 << 20);
    edit(path, (l) => l.slice(0, -3));
    const messages: string[] = [];
    const audit = createAuditLog({
      path,
      maxBytes: 1 << 20,
      keep: 2,
      log: createLogger({ write: (m) => messages.push(m) }),
    });
    audit.record({ endpoint: "/token", level: "dev", result: "granted" });
    await audit.close();
    assert.ok(
      messages.some((m) =>
        m.includes('its last line is not the one the gate last wrote; run "gcp-gate audit verify"')
      ),
      messages.join("\n"),
    );
    assert.match(
      verifyLog(path).problem ?? "",
      /^3 lines \(seq 8–10\) removed between audit\.log line 7 and audit\.log line 8$/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
