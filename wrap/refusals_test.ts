import assert from "node:assert/strict";
import { createLogger } from "../shared/log.ts";
import type { RefusalReport } from "../shared/protocol.ts";
import type { OwnerVerdict } from "./pid_owner.ts";
import { createRefusalReporter } from "./refusals.ts";

function verdict(kind: OwnerVerdict["kind"], extra: Partial<OwnerVerdict> = {}): OwnerVerdict {
  return {
    allowed: false,
    kind,
    uid: 1001,
    pid: undefined,
    comm: undefined,
    inode: "42",
    reason: kind === "other_user" ? "another user (uid 1001)" : "not a descendant",
    ...extra,
  };
}

function setup() {
  const lines: string[] = [];
  const sent: RefusalReport[] = [];
  const named: string[] = [];
  let t = 0;
  const reporter = createRefusalReporter({
    log: createLogger({ level: "debug", write: (l) => lines.push(l) }),
    send: (r) => sent.push(r),
    name: (inode) => {
      named.push(inode);
      return { pid: 77, comm: "curl" };
    },
    burst: 3,
    intervalMs: 1000,
    now: () => t,
  });
  return { reporter, lines, sent, named, advance: (ms: number) => (t += ms) };
}

Deno.test("createRefusalReporter() reports a burst, then one per interval, and counts the rest", () => {
  const s = setup();
  for (let i = 0; i < 100; i++) s.reporter.refused(verdict("other_user"), 40000 + i);
  assert.equal(s.sent.length, 3);
  assert.equal(s.lines.filter((l) => l.includes("refused a connection")).length, 3);
  assert.equal(s.reporter.pending, 97);
  s.advance(1000);
  s.reporter.refused(verdict("other_user"), 1);
  assert.equal(s.sent.length, 4);
  // The refusals not reported ride on the next report.
  assert.match(s.sent[3]!.reason, /and 97 more refused since the last report/);
  assert.match(s.lines.at(-1)!, /refused_unreported_before=97/);
  assert.equal(s.reporter.pending, 0);
  // Another uid is named by its uid: no process scan.
  assert.deepEqual(s.named, []);
  assert.match(s.lines[0]!, /uid=1001/);
});

Deno.test("createRefusalReporter() names our own uid's callers, only for reported refusals", () => {
  const s = setup();
  for (let i = 0; i < 10; i++) s.reporter.refused(verdict("outside_tree"), 1);
  assert.deepEqual(s.named, ["42", "42", "42"], "the slow scan runs for reported refusals only");
  assert.deepEqual(s.sent[0], { pid: 77, command: "curl", reason: "not a descendant" });
});

Deno.test("createRefusalReporter() does not report connections that closed before their check", () => {
  const s = setup();
  for (let i = 0; i < 10; i++) s.reporter.refused(verdict("gone", { reason: "closed" }), 1);
  assert.equal(s.sent.length, 0);
  assert.equal(s.lines.filter((l) => l.includes("refused")).length, 0);
  assert.equal(s.reporter.pending, 0);
  // And the budget is intact for real refusals.
  for (let i = 0; i < 3; i++) s.reporter.refused(verdict("other_user"), 1);
  assert.equal(s.sent.length, 3);
});

Deno.test("createRefusalReporter() drops a refusal whose socket nobody holds any more (closed meanwhile)", () => {
  const sent: RefusalReport[] = [];
  const reporter = createRefusalReporter({
    log: createLogger({ level: "error", write: () => {} }),
    send: (r) => sent.push(r),
    name: () => undefined,
    burst: 1,
    intervalMs: 60_000,
    now: () => 0,
  });
  for (let i = 0; i < 5; i++) reporter.refused(verdict("outside_tree"), 1);
  assert.equal(sent.length, 0);
  // Its budget was given back: another uid's refusal is still reported.
  reporter.refused(verdict("other_user"), 1);
  assert.equal(sent.length, 1);
});
