import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { createPrivateConfig } from "./cloudsdk_config.ts";

Deno.test("createPrivateConfig() makes a 0700 dir naming account and project, no credential", () => {
  const cfg = createPrivateConfig({ account: "me@example.com", project: "p1" });
  try {
    assert.equal(Deno.statSync(cfg.dir).mode! & 0o777, 0o700);
    const ini = Deno.readTextFileSync(`${cfg.dir}/configurations/config_default`);
    assert.match(ini, /^account = me@example\.com$/m);
    assert.match(ini, /^project = p1$/m);
    // A token file (or any [auth] setting) would be readable by every same-uid
    // process and bypass the PID-restricted proxy.
    assert.doesNotMatch(ini, /\[auth\]|access_token|credential_file/);
    const names = [...Deno.readDirSync(cfg.dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["access_tokens.db", "active_config", "configurations"]);
    assert.match(ini, /^disable_file_logging = true$/m);
  } finally {
    cfg.remove();
  }
  assert.throws(() => Deno.statSync(cfg.dir), Deno.errors.NotFound);
  cfg.remove(); // idempotent
});

Deno.test("createPrivateConfig() leaves out the project when there is none", () => {
  const cfg = createPrivateConfig({ account: "me@example.com", project: undefined });
  try {
    const ini = Deno.readTextFileSync(`${cfg.dir}/configurations/config_default`);
    assert.doesNotMatch(ini, /^project/m);
  } finally {
    cfg.remove();
  }
});

Deno.test("createPrivateConfig() refuses a value with a line break", () => {
  assert.throws(() => createPrivateConfig({ account: "a\n[auth]", project: undefined }));
});

Deno.test("gcloud's token cache in the private config drops every write", () => {
  const cfg = createPrivateConfig({ account: "me@example.com", project: undefined });
  try {
    // The statements gcloud's AccessTokenCache runs, in order.
    const db = new DatabaseSync(`${cfg.dir}/access_tokens.db`);
    try {
      db.exec(
        'CREATE TABLE IF NOT EXISTS "access_tokens" (account_id TEXT PRIMARY KEY, ' +
          "access_token TEXT, token_expiry TIMESTAMP, rapt_token TEXT, id_token TEXT)",
      );
      db.exec('SELECT id_token FROM "access_tokens" LIMIT 1');
      db.prepare(
        'REPLACE INTO "access_tokens" (account_id, access_token, token_expiry, rapt_token, id_token) VALUES (?,?,?,?,?)',
      ).run("me@example.com", "ya29.secret", null, null, "id.secret");
      const row = db.prepare('SELECT count(*) AS n FROM "access_tokens"').get();
      assert.equal(row?.n, 0);
    } finally {
      db.close();
    }
    const bytes = new TextDecoder().decode(Deno.readFileSync(`${cfg.dir}/access_tokens.db`));
    assert.ok(!bytes.includes("secret"), "a token reached the cache file");
    assert.equal(Deno.statSync(`${cfg.dir}/access_tokens.db`).mode! & 0o777, 0o600);
  } finally {
    cfg.remove();
  }
});
