import assert from "node:assert/strict";
import { createLogger } from "./log.ts";

const TOKEN = "ya29.c.secret-value-123";

Deno.test("createLogger() redacts secrets in messages and fields, in both formats", () => {
  for (const format of ["text", "json"] as const) {
    const lines: string[] = [];
    const log = createLogger({ format, write: (l) => lines.push(l) });
    log.info(`got ${TOKEN}`, { access_token: TOKEN, note: `Bearer ${TOKEN}`, scopes: ["a"] });
    assert.equal(lines.length, 1);
    assert.ok(!lines[0]!.includes(TOKEN), `${format}: ${lines[0]}`);
    assert.match(lines[0]!, /scopes/);
  }
});

Deno.test("createLogger() filters by level and writes JSON lines", () => {
  const lines: string[] = [];
  const log = createLogger({
    level: "warn",
    format: "json",
    write: (l) => lines.push(l),
    now: () => new Date(0),
  });
  log.debug("d");
  log.info("i");
  log.warn("w", { n: 1 });
  log.error("e");
  assert.equal(lines.length, 2);
  assert.deepEqual(JSON.parse(lines[0]!), {
    time: "1970-01-01T00:00:00.000Z",
    level: "warn",
    msg: "w",
    n: 1,
  });
});
