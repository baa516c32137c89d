/** The README's generated sections are the same data as the code. */
import assert from "node:assert/strict";
import { configKeysMarkdown, refreshDocs } from "../scripts/readme.ts";
import { ROOT } from "./_utils.ts";
import { CONFIG_SCHEMA } from "../shared/config.ts";
import { markdownTable, PERMISSIONS } from "../scripts/build.ts";

Deno.test("docs: every generated section matches the code (refresh: deno run -A scripts/readme.ts --write)", async () => {
  for (const [path, f] of await refreshDocs(ROOT)) {
    assert.equal(f.before, f.after, `${path}: a generated section is stale`);
  }
});

Deno.test("README: the config table lists every key", () => {
  const table = configKeysMarkdown();
  for (const key of Object.keys(CONFIG_SCHEMA)) {
    const shown = key.includes(".") ? `[${key.split(".")[0]}] ${key.split(".")[1]}` : key;
    assert.ok(table.includes(`\`${shown}\``), key);
  }
});

Deno.test("README: the permission table has every grant of every role, with its reason", () => {
  const table = markdownTable();
  for (const [role, b] of Object.entries(PERMISSIONS)) {
    for (const g of b.grants) {
      const row = table.split("\n").find((l) =>
        l.includes(`\`${role}\``) && l.includes(`\`${g.flag}\``)
      );
      assert.ok(row, `${role} ${g.flag} missing`);
      assert.ok(row.includes(g.why.replaceAll("|", "\\|")), `${role} ${g.flag}: reason missing`);
    }
  }
  assert.match(table, /`with-prod` +\| `--allow-all` +\| \(all\) +\| .*\/proc/);
});
