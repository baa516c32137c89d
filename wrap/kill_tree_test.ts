import assert from "node:assert/strict";
import { killTree, processTree } from "./kill_tree.ts";
import type { ProcDeps } from "./pid_owner.ts";

function alive(pid: number): boolean {
  try {
    // A zombie has exited; only its parent has not collected it yet.
    return !Deno.readTextFileSync(`/proc/${pid}/status`).includes("State:\tZ");
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return cond();
}

/** A fake /proc: pid → ppid. */
function fakeProc(tree: Record<number, number>): ProcDeps {
  return {
    listDir: (path) => (path === "/proc" ? [...Object.keys(tree), "self", "net"] : []),
    readTextFile: (path) => {
      const pid = Number(/^\/proc\/(\d+)\/stat$/.exec(path)?.[1]);
      const ppid = tree[pid];
      return ppid === undefined ? undefined : `${pid} (x y) S ${ppid} 1 1 0`;
    },
    readLink: () => undefined,
  };
}

Deno.test("processTree() lists the root and every descendant, nothing else", () => {
  const proc = fakeProc({ 10: 1, 11: 10, 12: 11, 13: 10, 20: 1, 21: 20 });
  assert.deepEqual(processTree(10, proc).sort(), [10, 11, 12, 13]);
  assert.deepEqual(processTree(99, proc), [99]);
});

Deno.test("killTree() stops the tree before killing it, and rescans for late forks", () => {
  const tree: Record<number, number> = { 10: 1, 11: 10, 20: 1 };
  const sent: string[] = [];
  const n = killTree(10, {
    proc: fakeProc(tree),
    kill: (pid, signal) => {
      sent.push(`${signal}:${pid}`);
      // 11 forked 12 just before it was stopped: the next scan must find it.
      if (pid === 11 && signal === "SIGSTOP") tree[12] = 11;
    },
  });
  assert.equal(n, 3);
  assert.deepEqual(sent, [
    "SIGSTOP:10",
    "SIGSTOP:11",
    "SIGSTOP:12",
    "SIGKILL:10",
    "SIGKILL:11",
    "SIGKILL:12",
  ]);
  assert.ok(!sent.some((s) => s.endsWith(":20")), "a process outside the tree is left alone");
});

Deno.test("killTree() kills a real command and the children it started", async () => {
  const child = new Deno.Command("sh", {
    args: ["-c", "sleep 300 & echo $!; sleep 300 & wait"],
    stdout: "piped",
    stderr: "null",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  const grandchild = Number(new TextDecoder().decode(value).trim());
  try {
    assert.ok(grandchild > 0 && alive(grandchild), "the grandchild runs");
    assert.ok(killTree(child.pid) >= 3);
    assert.equal((await child.status).signal, "SIGKILL");
    assert.ok(await until(() => !alive(grandchild)), "the grandchild outlived the kill");
  } finally {
    try {
      Deno.kill(grandchild, "SIGKILL");
    } catch { /* gone, as it should be */ }
    await child.stdout.cancel().catch(() => {});
  }
});
