import assert from "node:assert/strict";
import { diffLines, unifiedDiff } from "./diff.ts";

Deno.test("diffLines() finds the shortest edit script", () => {
  const ops = diffLines(["a", "b", "c", "d"], ["a", "x", "c", "d", "e"]);
  assert.equal(ops.map((o) => o.kind + o.line).join(" "), " a -b +x  c  d +e");
});

Deno.test("unifiedDiff() matches diff -u's hunks", () => {
  const a = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`);
  const b = [...a];
  b[2] = "changed 3";
  b.splice(15, 1);
  const text = unifiedDiff(a.join("\n") + "\n", b.join("\n") + "\n", {
    fromName: "a",
    toName: "b",
  });
  assert.equal(
    text,
    [
      "--- a",
      "+++ b",
      "@@ -1,6 +1,6 @@",
      " line 1",
      " line 2",
      "-line 3",
      "+changed 3",
      " line 4",
      " line 5",
      " line 6",
      "@@ -13,7 +13,6 @@",
      " line 13",
      " line 14",
      " line 15",
      "-line 16",
      " line 17",
      " line 18",
      " line 19",
      "",
    ].join("\n"),
  );
  assert.equal(unifiedDiff("same\n", "same\n", { fromName: "a", toName: "b" }), "");
});

Deno.test("unifiedDiff() handles empty sides", () => {
  assert.equal(
    unifiedDiff("", "x\n", { fromName: "a", toName: "b" }),
    "--- a\n+++ b\n@@ -0,0 +1,1 @@\n+x\n",
  );
});
