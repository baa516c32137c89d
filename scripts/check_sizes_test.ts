import assert from "node:assert/strict";
import { measureSource } from "./check_sizes.ts";

Deno.test("measureSource() counts each kind of function from its first token to its end", () => {
  const text = [
    "/** a doc comment is not counted */",
    "export function outer(): number {", // 2
    "  const inner = (x: number): number => {", // 3
    "    return x + 1;",
    "  };", // 5
    "  return inner(1);",
    "}", // 7
    "class C {",
    "  method(): void {", // 9
    "  }", // 10
    "}",
    "const o = { f() { return 1; } };", // 12
    "",
  ].join("\n");
  const m = measureSource("x.ts", text);
  assert.equal(m.lines, 12, "as wc -l counts");
  assert.deepEqual(m.functions, [
    { where: "x.ts:2 outer", lines: 6 },
    { where: "x.ts:3 inner", lines: 3 },
    { where: "x.ts:9 method", lines: 2 },
    { where: "x.ts:12 f", lines: 1 },
  ]);
});

Deno.test("measureSource() skips signatures without a body", () => {
  const m = measureSource("y.ts", "declare function f(): void;\ninterface I { m(): void }\n");
  assert.deepEqual(m.functions, []);
});
