import assert from "node:assert/strict";
import { type Config, loadInvocation } from "../shared/config.ts";
import { GATE_CLI } from "./cli.ts";
import { checkApproval, checkService, type LocalCheckDeps } from "./doctor_local.ts";

/** A real config, loaded as the gate loads it, from `toml` (when given) and these methods. */
function config(methods: string, toml?: string): Config {
  const file = "/home/u/gate.toml";
  return loadInvocation(GATE_CLI, [
    "--approval-methods",
    methods,
    "--socket-path",
    "/run/g/gate.sock",
  ], {
    env: (
      n,
    ) => (n === "HOME"
      ? "/home/u"
      : n === "GCP_GATE_CONFIG" && toml !== undefined
      ? file
      : undefined),
    readTextFile: (p) => (p === file ? toml : undefined),
    cwd: () => "/",
  }).config;
}

function deps(over: Partial<LocalCheckDeps> = {}): LocalCheckDeps {
  return {
    lstat: () => ({ isSymlink: false, isSocket: false, isDirectory: false, uid: 1, mode: 0o755 }),
    uid: () => 1,
    health: () => Promise.resolve(undefined),
    env: (n) => ({ HOME: "/home/u" } as Record<string, string>)[n],
    os: "linux",
    isTerminal: () => false,
    readTextFile: () => undefined,
    version: "v",
    ...over,
  };
}

Deno.test("checkApproval(): osascript on macOS needs no display; a terminal counts when present", () => {
  assert.equal(checkApproval(config("dialog"), deps({ os: "darwin" })).status, "PASS");
  assert.equal(
    checkApproval(config("terminal"), deps({ isTerminal: () => true })).status,
    "PASS",
  );
  const none = checkApproval(config("terminal"), deps());
  assert.equal(none.status, "FAIL");
  assert.match(none.fix!, /approval_methods = "terminal,queue"/);
});

Deno.test("checkApproval(): a missing zenity says how to install it", () => {
  const r = checkApproval(
    config("dialog,queue"),
    deps({ lstat: () => undefined, env: () => ":0" }),
  );
  assert.equal(r.status, "WARN");
  assert.match(r.fix!, /apt-get install zenity/);
});

Deno.test("checkService(): a unit written for another config asks to reinstall it", () => {
  const r = checkService(
    config("queue", ""),
    deps({ readTextFile: () => 'ExecStart="/bin/gcp-gate" "--config" "/home/u/old.toml"' }),
    true,
  );
  assert.equal(r.status, "WARN");
  assert.equal(r.fix, "gcp-gate install-service --yes --config /home/u/gate.toml");
  assert.equal(checkService(config("queue"), deps({ os: "windows" }), false).status, "PASS");
});
