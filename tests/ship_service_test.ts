/**
 * `gcp-gate install-service` through the real launcher: it writes the unit
 * only where the launcher grants it (the service dir, for this subcommand),
 * `--print` writes nothing, and `systemd-analyze verify` accepts the unit
 * when systemd is installed (reported as ignored otherwise).
 */
import assert from "node:assert/strict";
import { baseEnv, BIN, hasCommand, run, tempDir } from "./_utils.ts";

Deno.test("install-service --print shows the unit and writes nothing", async () => {
  await using home = tempDir();
  const h = home.path;
  const res = await run("gcp-gate", ["install-service", "--print"], { env: baseEnv(h) });
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, new RegExp(`^ExecStart="${BIN}/gcp-gate"$`, "m"));
  assert.match(res.stdout, new RegExp(`^Environment="XDG_RUNTIME_DIR=${h}/run"$`, "m"));
  assert.throws(() => Deno.statSync(`${h}/.config/systemd`), Deno.errors.NotFound);
});

Deno.test("install-service writes a 0644 user unit with the config path", async () => {
  await using home = tempDir();
  const h = home.path;
  const config = `${h}/gate.toml`;
  Deno.writeTextFileSync(config, `project_id = "demo-project"\n`);
  const res = await run("gcp-gate", ["install-service", "--config", config], { env: baseEnv(h) });
  assert.equal(res.code, 0, res.stderr);
  const unit = `${h}/.config/systemd/user/gcp-gate.service`;
  assert.equal((Deno.statSync(unit).mode ?? 0) & 0o777, 0o644);
  const text = Deno.readTextFileSync(unit);
  assert.match(text, new RegExp(`^ExecStart="${BIN}/gcp-gate" "--config" "${config}"$`, "m"));
  assert.match(res.stderr, /systemctl --user daemon-reload && systemctl --user enable --now/);
  // A changed unit is not overwritten without --yes.
  Deno.writeTextFileSync(unit, "[Service]\nExecStart=/bin/true\n");
  const again = await run("gcp-gate", ["install-service", "--config", config], { env: baseEnv(h) });
  assert.equal(again.code, 2);
  assert.match(again.stderr, /--yes/);
  assert.equal(Deno.readTextFileSync(unit), "[Service]\nExecStart=/bin/true\n");
});

Deno.test({
  name: "install-service: systemd-analyze verify accepts the generated unit",
  ignore: !hasCommand("systemd-analyze"),
  fn: async () => {
    await using home = tempDir();
    const h = home.path;
    const res = await run("gcp-gate", ["install-service"], { env: baseEnv(h) });
    assert.equal(res.code, 0, res.stderr);
    const unit = `${h}/.config/systemd/user/gcp-gate.service`;
    const verify = await run("systemd-analyze", ["verify", unit], {
      env: baseEnv(h),
      command: "systemd-analyze",
    });
    assert.equal(verify.code, 0, verify.stderr);
    assert.doesNotMatch(verify.stderr, /gcp-gate\.service:\d+: /, "systemd warned about the unit");
    // The check is real: a unit whose program is missing fails it.
    Deno.writeTextFileSync(unit, "[Service]\nExecStart=/nonexistent/gcp-gate\n");
    const bad = await run("systemd-analyze", ["verify", unit], {
      env: baseEnv(h),
      command: "systemd-analyze",
    });
    assert.notEqual(bad.code, 0);
  },
});
