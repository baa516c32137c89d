import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import { ensurePrivateDir, prepareSocketPath, removeOwnSocket } from "./socket.ts";

function tempDir(): string {
  const d = Deno.makeTempDirSync({ prefix: "gate-socket-test-" });
  Deno.chmodSync(d, 0o700);
  return d;
}

Deno.test("ensurePrivateDir() refuses a directory owned by someone else, naming both uids", () => {
  const dir = tempDir();
  try {
    const mine = Deno.statSync(dir).uid!;
    assert.throws(
      () => ensurePrivateDir(dir, { uid: () => mine + 1 }),
      (e) =>
        e instanceof GateError && e.code === "unsafe_path" &&
        e.message.includes(`belongs to uid ${mine}`) && e.message.includes(`(uid ${mine + 1})`),
    );
    ensurePrivateDir(dir, { uid: () => mine });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("ensurePrivateDir() creates a missing leaf 0700 despite the umask, not its parents", () => {
  const root = tempDir();
  try {
    ensurePrivateDir(`${root}/sock`, { uid: () => null });
    assert.equal(Deno.statSync(`${root}/sock`).mode! & 0o777, 0o700);
    assert.throws(
      () => ensurePrivateDir(`${root}/missing/sock`, { uid: () => null }),
      (e) => e instanceof GateError && /parent directory .* does not exist/.test(e.message),
    );
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("removeOwnSocket() leaves a socket that replaced ours alone", async () => {
  const dir = tempDir();
  const path = `${dir}/gate.sock`;
  try {
    await prepareSocketPath(path, { uid: () => null, isLive: () => Promise.resolve(false) });
    const listener = Deno.listen({ transport: "unix", path });
    const ino = Deno.lstatSync(path).ino;
    removeOwnSocket(path, (ino ?? 0) + 1);
    assert.ok(Deno.lstatSync(path).isSocket, "another inode: not ours, kept");
    removeOwnSocket(path, ino);
    assert.throws(() => Deno.lstatSync(path), Deno.errors.NotFound, "ours: removed");
    listener.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
