/** The README's generated sections are the same data as the code. */
import assert from "node:assert/strict";
import { configKeysMarkdown, generatedSections, sectionBody } from "../scripts/readme.ts";
import { ROOT } from "./_utils.ts";
import { CONFIG_SCHEMA } from "../shared/config.ts";

const README = Deno.readTextFileSync(`${ROOT}/README.md`);

Deno.test("README: every generated section matches the code (refresh: deno run -A scripts/readme.ts --write)", async () => {
  for (const [name, body] of Object.entries(await generatedSections())) {
    assert.equal(sectionBody(README, name), body.trim(), `README section ${name} is stale`);
  }
});

Deno.test("README: the config table lists every key", () => {
  const table = configKeysMarkdown();
  for (const key of Object.keys(CONFIG_SCHEMA)) {
    const shown = key.includes(".") ? `[${key.split(".")[0]}] ${key.split(".")[1]}` : key;
    assert.ok(table.includes(`\`${shown}\``), key);
  }
});
