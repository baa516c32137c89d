import assert from "node:assert/strict";
import { MAX_REQUEST_REASON, requestReasonFor } from "./request_reason.ts";

Deno.test("requestReasonFor() names the approval and keeps the header printable ASCII", () => {
  assert.equal(requestReasonFor("abcd1234", undefined), "gcp-gate approval abcd1234");
  assert.equal(requestReasonFor("abcd1234", "fix prod"), "gcp-gate approval abcd1234: fix prod");
  assert.equal(
    requestReasonFor("abcd1234", "déploy\r\nX-Evil: 1"),
    "gcp-gate approval abcd1234: d?ploy X-Evil: 1",
  );
  const long = requestReasonFor("abcd1234", "x".repeat(1000));
  assert.equal(long.length, MAX_REQUEST_REASON);
  assert.ok(long.endsWith("..."));
});
