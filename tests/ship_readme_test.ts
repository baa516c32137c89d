/**
 * The README's permission table and the build's permission table are the
 * same data: the README section must equal the generated table. Refresh it
 * with `deno run -A scripts/build.ts --write-readme`.
 */
import assert from "node:assert/strict";
import {
  markdownTable,
  PERMISSIONS,
  README_PERMISSIONS_BEGIN,
  README_PERMISSIONS_END,
  readmeWithTable,
} from "../scripts/build.ts";
import { ROOT } from "./_utils.ts";

Deno.test("README: the permissions section is the table generated from scripts/build.ts", () => {
  const readme = Deno.readTextFileSync(`${ROOT}/README.md`);
  const begin = readme.indexOf(README_PERMISSIONS_BEGIN);
  const end = readme.indexOf(README_PERMISSIONS_END);
  assert.ok(begin >= 0 && end > begin, "README lost its permissions section markers");
  const section = readme.slice(begin + README_PERMISSIONS_BEGIN.length, end).trim();
  assert.equal(
    section,
    markdownTable(),
    "README permission table is stale: run `deno run -A scripts/build.ts --write-readme`",
  );
  assert.equal(readmeWithTable(readme), readme, "--write-readme would change the README");
});

Deno.test("README: the generated table has every grant of every role, with its reason", () => {
  const table = markdownTable();
  for (const [role, b] of Object.entries(PERMISSIONS)) {
    for (const g of b.grants) {
      const row = table.split("\n").find((l) =>
        l.includes(`\`${role}\``) && l.includes(`\`${g.flag}\``)
      );
      assert.ok(row, `${role} ${g.flag} missing`);
      assert.ok(row.includes(g.why), `${role} ${g.flag}: reason missing`);
    }
  }
  assert.match(table, /`with-prod` +\| `--allow-all` +\| \(all\) +\| .*\/proc/);
});
