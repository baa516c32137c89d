import assert from "node:assert/strict";
import { type CommandStat, resolveCommand, type ResolveCommandDeps } from "./command.ts";

function fakeFs(entries: Record<string, CommandStat>): ResolveCommandDeps {
  return { stat: (p) => entries[p] };
}
const exe: CommandStat = { isFile: true, isDirectory: false, mode: 0o755 };
const plain: CommandStat = { isFile: true, isDirectory: false, mode: 0o644 };
const dir: CommandStat = { isFile: false, isDirectory: true, mode: 0o755 };

Deno.test("resolveCommand() searches PATH in order and skips non-executables", () => {
  const fs = fakeFs({ "/a/tool": plain, "/b/tool": exe, "/c/tool": exe });
  assert.deepEqual(resolveCommand("tool", { path: "/a:/b:/c", cwd: "/w" }, fs), {
    ok: true,
    path: "/b/tool",
  });
});

Deno.test("resolveCommand() reports 127 with the shell's message for an unknown name", () => {
  const r = resolveCommand("gcloudd", { path: "/a:/b", cwd: "/w" }, fakeFs({}));
  assert.deepEqual(r, { ok: false, exitCode: 127, message: "gcloudd: command not found" });
});

Deno.test("resolveCommand() takes a name with a slash as a path", () => {
  const fs = fakeFs({ "/w/bin/x": exe, "/w/y": plain, "/w/d": dir });
  assert.deepEqual(resolveCommand("bin/x", { path: "", cwd: "/w" }, fs), {
    ok: true,
    path: "/w/bin/x",
  });
  assert.equal(resolveCommand("./y", { path: "", cwd: "/w" }, fs).ok, false);
  const missing = resolveCommand("./nope", { path: "", cwd: "/w" }, fs);
  assert.deepEqual(missing, {
    ok: false,
    exitCode: 127,
    message: "./nope: No such file or directory",
  });
  const notExe = resolveCommand("/w/y", { path: "", cwd: "/w" }, fs);
  assert.equal(!notExe.ok && notExe.exitCode, 126);
  const isDir = resolveCommand("/w/d", { path: "", cwd: "/w" }, fs);
  assert.equal(!isDir.ok && isDir.message, "/w/d: Is a directory");
});

Deno.test("resolveCommand() treats an empty PATH entry as the current directory", () => {
  const fs = fakeFs({ "/w/tool": exe });
  assert.deepEqual(resolveCommand("tool", { path: "/a::/b", cwd: "/w" }, fs), {
    ok: true,
    path: "/w/tool",
  });
});

Deno.test("resolveCommand() finds a real program on the real PATH", () => {
  const r = resolveCommand("sh", { path: Deno.env.get("PATH"), cwd: Deno.cwd() });
  assert.equal(r.ok, true);
});
