import assert from "node:assert/strict";
import { createPrivateConfig } from "./cloudsdk_config.ts";

Deno.test("createPrivateConfig() makes a 0700 dir whose config names a 0600 token file", () => {
  const cfg = createPrivateConfig({ account: "me@example.com", project: "p1" });
  try {
    assert.equal(Deno.statSync(cfg.dir).mode! & 0o777, 0o700);
    const ini = Deno.readTextFileSync(`${cfg.dir}/configurations/config_default`);
    assert.match(ini, /^\[auth\]\naccess_token_file = (.+)$/m);
    assert.equal(/access_token_file = (.+)/.exec(ini)?.[1], cfg.tokenFile);
    assert.match(ini, /^account = me@example\.com$/m);
    assert.match(ini, /^project = p1$/m);
    cfg.writeToken("tok-1");
    assert.equal(Deno.readTextFileSync(cfg.tokenFile), "tok-1");
    assert.equal(Deno.statSync(cfg.tokenFile).mode! & 0o777, 0o600);
  } finally {
    cfg.remove();
  }
  assert.throws(() => Deno.statSync(cfg.dir), Deno.errors.NotFound);
  cfg.remove(); // idempotent
});

Deno.test("writeToken() replaces the file by rename (a reader keeps the old inode)", () => {
  const cfg = createPrivateConfig({ account: "me@example.com", project: undefined });
  try {
    cfg.writeToken("old");
    using reader = Deno.openSync(cfg.tokenFile);
    const before = Deno.statSync(cfg.tokenFile).ino;
    cfg.writeToken("new");
    assert.notEqual(Deno.statSync(cfg.tokenFile).ino, before);
    const buf = new Uint8Array(16);
    const n = reader.readSync(buf) ?? 0;
    assert.equal(new TextDecoder().decode(buf.subarray(0, n)), "old");
    assert.equal(Deno.readTextFileSync(cfg.tokenFile), "new");
    // No temp files are left behind.
    const names = [...Deno.readDirSync(cfg.dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["access_token", "active_config", "configurations"]);
  } finally {
    cfg.remove();
  }
});

Deno.test("createPrivateConfig() refuses a value with a line break", () => {
  assert.throws(() => createPrivateConfig({ account: "a\n[auth]", project: undefined }));
});
