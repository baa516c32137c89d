import assert from "node:assert/strict";
import { APPROVAL_CODE_ALPHABET, APPROVAL_CODE_PATTERN } from "../shared/protocol.ts";
import { createApprovalCode } from "./approval_code.ts";

Deno.test("createApprovalCode() makes ABC-DEF codes the gate accepts, different each time", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const code = createApprovalCode();
    assert.match(code, APPROVAL_CODE_PATTERN);
    seen.add(code);
  }
  assert.ok(seen.size > 195, `only ${seen.size} distinct codes in 200`);
});

Deno.test("createApprovalCode() skips bytes that would bias the alphabet", () => {
  let call = 0;
  const code = createApprovalCode({
    random: (buf) => {
      // First fill: only biased bytes (all rejected); then 0, 1, 2, …
      buf.fill(255);
      if (call++ > 0) buf.forEach((_, i) => (buf[i] = i));
    },
  });
  const a = APPROVAL_CODE_ALPHABET;
  assert.equal(code, `${a[0]}${a[1]}${a[2]}-${a[3]}${a[4]}${a[5]}`);
  assert.equal(call, 2);
});
