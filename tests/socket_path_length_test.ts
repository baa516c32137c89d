/**
 * A socket path longer than the platform's Unix socket limit is refused when
 * the config is loaded, by every role that listens on or connects to a
 * socket: one line naming the path and by how much it is too long, exit 2,
 * no stack trace (it used to end the gate with a TypeError and a trace).
 */
import assert from "node:assert/strict";
import { MAX_SOCKET_PATH_BYTES } from "../shared/config.ts";
import { baseEnv, run, tempDir } from "./_utils.ts";

Deno.test("every role refuses a too-long socket path with one line and exit 2", async () => {
  await using dir = tempDir();
  const long = `${dir.path}/${"d".repeat(120)}`;
  const cases: [string, string[], Record<string, string>, RegExp][] = [
    ["gcp-gate", ["--socket-path", `${long}/gate.sock`], {}, /"socket_path"/],
    [
      "gcp-gate",
      ["pending", "--admin-socket-path", `${long}/admin.sock`],
      {},
      /"admin_socket_path"/,
    ],
    // The defaults too: a long XDG_RUNTIME_DIR makes both of the gate's sockets too long.
    ["gcp-gate", [], { XDG_RUNTIME_DIR: long }, /^gcp-gate: default .*"socket_path"/],
    ["gcp-metadata-proxy", ["--socket-path", `${long}/gate.sock`], {}, /"socket_path"/],
    ["with-prod", ["--socket-path", `${long}/gate.sock`, "--", "true"], {}, /"socket_path"/],
  ];
  for (const [role, args, env, which] of cases) {
    const res = await run(role, args, { env: baseEnv(dir.path, env) });
    const what = `${role} ${args.join(" ")}: ${res.stderr}`;
    assert.equal(res.code, 2, what);
    const lines = res.stderr.trim().split("\n");
    assert.equal(lines.length, 1, what);
    assert.match(lines[0]!, which, what);
    assert.match(
      lines[0]!,
      new RegExp(
        `is \\d+ bytes, \\d+ more than a Unix socket path may have on \\w+ \\(${MAX_SOCKET_PATH_BYTES}\\)`,
      ),
      what,
    );
    assert.ok(!/\bat |TypeError|SUN_LEN/.test(res.stderr), what);
  }
});
