/**
 * Every built executable fails clearly: one line, documented exit codes, no
 * stack traces for user errors.
 */
import assert from "node:assert/strict";
import { baseEnv, BIN, hasCommand, type RoleBin, run, start, tempDir } from "./_utils.ts";

const ROLES: RoleBin[] = [
  "gcp-gate",
  "gcp-metadata-proxy",
  "with-prod",
  "gcp-kube-token",
  "gcp-kube-setup",
];

function assertNoStack(text: string): void {
  assert.doesNotMatch(text, /^\s+at .*:\d+:\d+/m, `stack trace in:\n${text}`);
  assert.doesNotMatch(text, /Uncaught|NotCapable/, `runtime error in:\n${text}`);
}

for (const role of ROLES) {
  Deno.test({
    name: `${role}: an unknown flag is a one-line usage error, exit 2`,
    ignore: !hasCommand(`${BIN}/${role}`),
    fn: async () => {
      await using home = tempDir();
      const res = await run(role, ["--definitely-not-a-flag"], { env: baseEnv(home.path) });
      assert.equal(res.code, 2, res.stderr);
      assert.equal(res.stdout, "");
      assertNoStack(res.stderr);
      const lines = res.stderr.trim().split("\n");
      assert.ok(lines.length <= 2, res.stderr);
      assert.match(lines[0]!, new RegExp(`^${role}: .*--definitely-not-a-flag`));
    },
  });

  Deno.test({
    name: `${role}: --help prints usage on stdout without loading config`,
    ignore: !hasCommand(`${BIN}/${role}`),
    fn: async () => {
      await using home = tempDir();
      const res = await run(role, ["--help"], { env: baseEnv(home.path) });
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, new RegExp(`^${role} \\d+\\.\\d+\\.\\d+`));
      assert.match(res.stdout, /--help/);
    },
  });
}

for (const role of ["gcp-gate", "gcp-metadata-proxy"] as const) {
  Deno.test(`${role}: bad TOML names the file, line and column; exit 2`, async () => {
    await using home = tempDir();
    const cfg = `${home.path}/bad.toml`;
    Deno.writeTextFileSync(cfg, 'project_id = "p"\nport = = 1\n');
    const res = await run(role, ["--config", cfg], { env: baseEnv(home.path) });
    assert.equal(res.code, 2, res.stderr);
    assertNoStack(res.stderr);
    assert.match(res.stderr, new RegExp(`${cfg.replaceAll("/", "\\/")}: line 2, column \\d+`));
  });

  Deno.test(`${role}: an unknown config key is named with its file; exit 2`, async () => {
    await using home = tempDir();
    const cfg = `${home.path}/c.toml`;
    Deno.writeTextFileSync(cfg, 'projectid = "typo"\n');
    const res = await run(role, ["--config", cfg], { env: baseEnv(home.path) });
    assert.equal(res.code, 2, res.stderr);
    assert.match(res.stderr, /unknown key "projectid"/);
  });
}

Deno.test("gcp-gate: missing ADC names every path tried and the login command", async () => {
  await using home = tempDir();
  const cfg = `${home.path}/gate.toml`;
  Deno.mkdirSync(`${home.path}/run`, { mode: 0o700 });
  Deno.writeTextFileSync(
    cfg,
    `socket_path = "${home.path}/run/g/gate.sock"\naudit_log = "${home.path}/state/audit.log"\nadmin_socket_path = "${home.path}/run/a/admin.sock"\n`,
  );
  const env = baseEnv(home.path, {
    GOOGLE_APPLICATION_CREDENTIALS: `${home.path}/nope.json`,
    CLOUDSDK_CONFIG: `${home.path}/gcloud`,
  });
  await using gate = await start("gcp-gate", ["--config", cfg], {
    env,
    ready: /ready: listening on/,
  });
  const out = gate.output();
  assert.match(out, new RegExp(`${home.path}/nope\\.json`));
  assert.match(out, new RegExp(`${home.path}/gcloud/application_default_credentials\\.json`));
  assert.match(
    out,
    new RegExp(`${home.path}/\\.config/gcloud/application_default_credentials\\.json`),
  );
  assert.match(out, /gcloud auth application-default login/);
  assertNoStack(out);
});

Deno.test({
  name:
    "gcp-kube-token: a scheme in GCE_METADATA_HOST is tolerated by the launcher (one-line error, no Deno flag error)",
  ignore: !hasCommand(`${BIN}/gcp-kube-token`),
  fn: async () => {
    await using home = tempDir();
    // Port 9 (discard) on loopback: nothing listens, so the plugin must report the proxy as down.
    const res = await run("gcp-kube-token", [], {
      env: baseEnv(home.path, { GCE_METADATA_HOST: "http://127.0.0.1:9" }),
    });
    assert.equal(res.code, 1, res.stderr);
    assert.equal(res.stdout, "");
    assertNoStack(res.stderr);
    assert.equal(res.stderr.trim().split("\n").length, 1, res.stderr);
    assert.match(res.stderr, /127\.0\.0\.1:9/);
  },
});
