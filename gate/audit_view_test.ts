import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import { formatRecords, matches, parseResults, parseSince } from "./audit_view.ts";

const NOW = Date.parse("2030-01-01T12:00:00Z");

Deno.test("parseSince() takes durations and dates, and refuses anything else with a usage error", () => {
  assert.equal(parseSince("90s", NOW), NOW - 90_000);
  assert.equal(parseSince("1h", NOW), NOW - 3_600_000);
  assert.equal(parseSince("7d", NOW), NOW - 7 * 86_400_000);
  assert.equal(parseSince("2030-01-01T08:00:00Z", NOW), Date.parse("2030-01-01T08:00:00Z"));
  for (const bad of ["1w", "yesterday", "-1h", ""]) {
    assert.throws(() => parseSince(bad, NOW), (e) => e instanceof GateError && e.code === "usage");
  }
});

Deno.test("parseResults() takes a comma list of known results only", () => {
  assert.deepEqual(parseResults("denied, rate_limited"), ["denied", "rate_limited"]);
  assert.throws(() => parseResults("deny"), /use one or more of granted, denied/);
});

Deno.test("matches() filters by time, result and session prefix", () => {
  const r = { time: "2030-01-01T11:30:00.000Z", result: "denied", session: "abcd1234" };
  assert.ok(matches(r, {}));
  assert.ok(matches(r, { sinceMs: parseSince("1h", NOW), results: ["denied"], session: "abc" }));
  assert.ok(!matches(r, { sinceMs: parseSince("10m", NOW) }));
  assert.ok(!matches(r, { results: ["granted"] }));
  assert.ok(!matches(r, { session: "abd" }));
  assert.ok(!matches({ result: "denied" }, { session: "a" }), "no session: no match");
});

Deno.test("formatRecords() gives one line per event, marks prod decisions, folds runs of summaries", () => {
  const lines = formatRecords([
    {
      time: "2030-01-01T11:00:00.000Z",
      endpoint: "/token",
      level: "dev",
      result: "granted",
      email: "e@x.com",
      ttl_seconds: 3600,
    },
    {
      time: "2030-01-01T11:01:00.000Z",
      endpoint: "/token",
      level: "dev",
      result: "granted",
      cache_hits: 24,
      period_seconds: 60,
    },
    {
      time: "2030-01-01T11:02:00.000Z",
      endpoint: "/token",
      level: "dev",
      result: "granted",
      cache_hits: 6,
      period_seconds: 60,
    },
    {
      time: "2030-01-01T11:02:00.000Z",
      endpoint: "/session",
      level: "prod",
      result: "rate_limited",
      repeats: 995,
      period_seconds: 60,
    },
    {
      time: "2030-01-01T11:03:00.000Z",
      endpoint: "/session",
      level: "prod",
      result: "granted",
      session: "abcd1234",
      approval: "queue: approved",
      command: ["gcloud", "sql", "connect", "db\u001b[31m"],
    },
    {
      time: "2030-01-01T11:04:00.000Z",
      endpoint: "/session",
      level: "prod",
      result: "rate_limited",
      error: "wait",
    },
  ]);
  assert.equal(lines.length, 4, lines.join("\n"));
  assert.match(lines[0]!, /^2030-01-01 11:00:00Z {4}dev {3}granted +\/token +e@x\.com +ttl 3600s$/);
  assert.equal(
    lines[1],
    "2030-01-01 11:02:00Z    ··  summary      /token (dev) cached ×30, /session (prod) rate_limited ×995  (counted over 120s)",
  );
  assert.match(
    lines[2]!,
    /^2030-01-01 11:03:00Z {2}▶ PROD {2}granted .* session abcd1234 .* \$ gcloud sql connect db\[31m$/,
  );
  assert.ok(
    !lines[2]!.includes("\u001b"),
    "control characters from the log never reach the terminal",
  );
  assert.doesNotMatch(lines[3]!, /▶/, "a rejection is not a decision");
});

Deno.test("formatRecords() colours prod decisions only when asked", () => {
  const r = {
    time: "2030-01-01T11:03:00.000Z",
    endpoint: "/session",
    level: "prod",
    result: "denied",
  };
  assert.ok(formatRecords([r], true)[0]!.startsWith("\x1b[1;31m"));
  assert.ok(!formatRecords([r], false)[0]!.includes("\x1b"));
});
