import assert from "node:assert/strict";
import { type PathFacts, socketDirProblem, socketFileProblem } from "./socket_mode.ts";

const dir = (mode: number, uid = 1000): PathFacts => ({
  isSymlink: false,
  isSocket: false,
  isDirectory: true,
  uid,
  mode,
});
const sock = (mode: number, uid = 1000): PathFacts => ({
  ...dir(mode, uid),
  isDirectory: false,
  isSocket: true,
});

Deno.test("socketDirProblem() accepts 0700 of ours, refuses group/other bits, strangers, symlinks", () => {
  assert.equal(socketDirProblem("/r/g", dir(0o700), 1000), undefined);
  assert.equal(socketDirProblem("/r/g", dir(0o750), 1000)?.fix, "chmod 700 /r/g");
  assert.match(socketDirProblem("/r/g", dir(0o700, 0), 1000)!.problem, /uid 0, not to you/);
  assert.match(
    socketDirProblem("/r/g", { ...dir(0o777), isSymlink: true }, 1000)!.problem,
    /symlink/,
  );
});

Deno.test("socketFileProblem() accepts 0600 sockets of ours only", () => {
  assert.equal(socketFileProblem("/r/g/s", sock(0o600), 1000), undefined);
  assert.equal(socketFileProblem("/r/g/s", sock(0o666), 1000)?.fix, "chmod 600 /r/g/s");
  assert.match(
    socketFileProblem("/r/g/s", { ...sock(0o600), isSocket: false }, 1000)!.problem,
    /not a socket/,
  );
  assert.equal(socketFileProblem("/r/g/s", sock(0o600, 1001), null), undefined);
});
