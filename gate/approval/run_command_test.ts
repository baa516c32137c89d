import assert from "node:assert/strict";
import { runCommand } from "./run_command.ts";

Deno.test("runCommand(): reports exit code and output", async () => {
  const r = await runCommand("/bin/sh", ["-c", "echo out; echo err >&2; exit 5"], {
    signal: new AbortController().signal,
    killAfterMs: 10_000,
  });
  assert.deepEqual(r, { code: 5, killed: false, stdout: "out\n", stderr: "err\n" });
});

Deno.test("runCommand(): an abort kills the program (the dialog closes with its client)", async () => {
  const ac = new AbortController();
  const running = runCommand("/bin/sleep", ["30"], { signal: ac.signal, killAfterMs: 60_000 });
  setTimeout(() => ac.abort(), 50);
  const r = await running;
  assert.equal(r.killed, true);
  assert.equal(r.code, 143);
});

Deno.test("runCommand(): a program that never returns is killed at killAfterMs", async () => {
  const r = await runCommand("/bin/sleep", ["30"], {
    signal: new AbortController().signal,
    killAfterMs: 100,
  });
  assert.equal(r.killed, true);
});
