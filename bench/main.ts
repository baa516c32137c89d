// deno-lint-ignore-file no-console -- benchmark results are this program's product
/**
 * `deno task bench`: every benchmark measures its subject and a baseline side
 * by side in one run and prints ratios. Output lines are stable:
 *   bench <name>: <metric>=<value> … ratio=<r> target=<t> <PASS|FAIL>
 */
import type { BenchResult } from "./_bench.ts";
import { BENCHES } from "./registry.ts";

const only = Deno.args[0];
const results: BenchResult[] = [];
for (const [name, fn] of Object.entries(BENCHES)) {
  if (only && !name.includes(only)) continue;
  console.log(`# ${name}`);
  try {
    for (const r of await fn()) {
      results.push(r);
      console.log(
        `bench ${r.name}: ${r.detail} ratio=${r.ratio.toFixed(2)} target=${r.target} ${
          r.pass ? "PASS" : "FAIL"
        }`,
      );
    }
  } catch (err) {
    console.log(`bench ${name}: ERROR ${(err as Error).message}`);
    results.push({ name, detail: "error", ratio: NaN, target: "-", pass: false });
  }
}
const failed = results.filter((r) => !r.pass).length;
console.log(`bench: ${results.length - failed} passed, ${failed} failed`);
