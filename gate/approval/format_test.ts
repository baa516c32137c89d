import assert from "node:assert/strict";
import { describeRequest, formatDuration } from "./format.ts";
import type { ApprovalRequest } from "./types.ts";

Deno.test("formatDuration() reads like a person would say it", () => {
  assert.equal(formatDuration(28800), "8 h");
  assert.equal(formatDuration(5400), "1 h 30 min");
  assert.equal(formatDuration(600), "10 min");
  assert.equal(formatDuration(90), "1 min 30 s");
  assert.equal(formatDuration(30), "30 s");
});

Deno.test("describeRequest() re-redacts and strips what the caller sent (the gate trusts no one)", () => {
  const req: ApprovalRequest = {
    id: "id1",
    email: "e@x.com\u202e",
    project: undefined,
    scopes: [],
    ttlSeconds: 60,
    reason: undefined,
    command: ["curl", "-H", "Authorization: Bearer ya29.secret", "\u001b[2Jclear"],
    notes: [],
    kind: "token",
  };
  const text = describeRequest(req).join("\n");
  assert.ok(!text.includes("ya29.secret"));
  assert.ok(!text.includes("\u001b") && !text.includes("\u202e"));
  assert.match(text, /Project:\s+\(not given\)/);
  assert.match(text, /Reason:\s+\(none given\)/);
  assert.match(text, /prod token/);
});
