import assert from "node:assert/strict";
import { backupOnce, readBackups, writeFileAtomic } from "./safe_write.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function withDir(fn: (dir: string) => void): void {
  const dir = Deno.makeTempDirSync({ prefix: "kube-safe-write-" });
  try {
    fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("writeFileAtomic() keeps the mode and leaves no temp file", () => {
  withDir((dir) => {
    const f = `${dir}/config`;
    Deno.writeTextFileSync(f, "old");
    Deno.chmodSync(f, 0o640);
    writeFileAtomic(f, enc("new"), 0o640);
    assert.equal(Deno.readTextFileSync(f), "new");
    assert.equal(Deno.statSync(f).mode! & 0o777, 0o640);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["config"]);
  });
});

Deno.test("writeFileAtomic() writes through a symlink to its target", () => {
  withDir((dir) => {
    Deno.mkdirSync(`${dir}/dotfiles`);
    Deno.writeTextFileSync(`${dir}/dotfiles/kubeconfig`, "old");
    Deno.symlinkSync(`${dir}/dotfiles/kubeconfig`, `${dir}/config`);
    writeFileAtomic(`${dir}/config`, enc("new"), 0o600);
    assert.ok(Deno.lstatSync(`${dir}/config`).isSymlink);
    assert.equal(Deno.readTextFileSync(`${dir}/dotfiles/kubeconfig`), "new");
  });
});

Deno.test("backupOnce() never overwrites an older, different backup", () => {
  withDir((dir) => {
    const f = `${dir}/config`;
    const first = backupOnce(f, enc("v1"), 0o600);
    assert.deepEqual(first, { path: `${f}.bak`, created: true, keptOlder: undefined });
    assert.deepEqual(backupOnce(f, enc("v1"), 0o600), { ...first, created: false });
    const second = backupOnce(f, enc("v2"), 0o600);
    assert.deepEqual(second, { path: `${f}.bak.1`, created: true, keptOlder: `${f}.bak` });
    assert.equal(Deno.readTextFileSync(`${f}.bak`), "v1");
    assert.equal(Deno.statSync(`${f}.bak.1`).mode! & 0o777, 0o600);
    assert.deepEqual(readBackups(f).map((b) => b.text), ["v2", "v1"]);
  });
});
