import assert from "node:assert/strict";
import { GateError } from "./errors.ts";
import {
  checkedThrough,
  checkSocketDirWritable,
  checkSocketTrust,
  type SocketTrustDeps,
  writableDirMessage,
} from "./socket_trust.ts";

interface Entry {
  readonly uid: number;
  readonly mode: number;
  readonly socket?: boolean;
}

function fileInfo(e: Entry): Deno.FileInfo {
  return {
    isFile: false,
    isDirectory: !e.socket,
    isSymlink: false,
    isSocket: e.socket === true,
    isBlockDevice: false,
    isCharDevice: false,
    isFifo: false,
    size: 0,
    mtime: null,
    atime: null,
    birthtime: null,
    ctime: null,
    dev: 0,
    ino: 0,
    mode: e.mode,
    nlink: 1,
    uid: e.uid,
    gid: 0,
    rdev: 0,
    blksize: 0,
    blocks: 0,
  };
}

function fakeFs(
  me: number,
  entries: Record<string, Entry>,
  renameError?: string,
): SocketTrustDeps {
  return {
    uid: () => me,
    stat: (p) => {
      const e = entries[p];
      if (!e) throw new Deno.errors.NotFound(p);
      return fileInfo(e);
    },
    renameOnto: () => {
      if (renameError) throw Object.assign(new Error(renameError), { code: renameError });
    },
  };
}

const SOCK = "/run/gcp-gate/gate.sock";
const DIR = "/run/gcp-gate";

function refusal(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof GateError && err.code === "untrusted_socket", String(err));
    return err.message;
  }
  assert.fail("not refused");
}

Deno.test("checkSocketTrust() accepts a 0600 socket of ours in our 0700 directory", () => {
  checkSocketTrust(
    SOCK,
    fakeFs(1000, {
      [SOCK]: { uid: 1000, mode: 0o140600, socket: true },
      [DIR]: { uid: 1000, mode: 0o40700 },
    }),
  );
});

Deno.test("checkSocketTrust() accepts a root-owned socket and directory", () => {
  checkSocketTrust(
    SOCK,
    fakeFs(1000, {
      [SOCK]: { uid: 0, mode: 0o140600, socket: true },
      [DIR]: { uid: 0, mode: 0o40755 },
    }),
  );
});

Deno.test("checkSocketTrust() lets a missing socket through (the client reports it)", () => {
  checkSocketTrust(SOCK, fakeFs(1000, {}));
});

Deno.test("checkSocketTrust() refuses a socket planted by another uid, naming both uids", () => {
  const msg = refusal(() =>
    checkSocketTrust(
      SOCK,
      fakeFs(1000, {
        [SOCK]: { uid: 1001, mode: 0o140600, socket: true },
        [DIR]: { uid: 1000, mode: 0o40700 },
      }),
    )
  );
  assert.match(msg, /belongs to uid 1001, not to you \(uid 1000\)/);
});

Deno.test("checkSocketTrust() refuses a socket others can reach (0666)", () => {
  const msg = refusal(() =>
    checkSocketTrust(
      SOCK,
      fakeFs(1000, {
        [SOCK]: { uid: 1000, mode: 0o140666, socket: true },
        [DIR]: { uid: 1000, mode: 0o40700 },
      }),
    )
  );
  assert.match(msg, /mode 0666 lets other users reach it; it must be 0600/);
});

Deno.test("checkSocketTrust() refuses a socket in a world-writable directory without sticky bit", () => {
  const msg = refusal(() =>
    checkSocketTrust(
      SOCK,
      fakeFs(1000, {
        [SOCK]: { uid: 1000, mode: 0o140600, socket: true },
        [DIR]: { uid: 1000, mode: 0o40777 },
      }),
    )
  );
  assert.match(msg, /lets another user replace it/);
  // The sticky bit (as on /tmp) stops other users renaming our socket.
  checkSocketTrust(
    SOCK,
    fakeFs(1000, {
      [SOCK]: { uid: 1000, mode: 0o140600, socket: true },
      [DIR]: { uid: 0, mode: 0o41777 },
    }),
  );
});

Deno.test("checkSocketDirWritable() sees a read-only mount through EROFS, whatever the mode", () => {
  const r = checkSocketDirWritable(
    SOCK,
    fakeFs(1000, { [DIR]: { uid: 1000, mode: 0o40700 } }, "EROFS"),
  );
  assert.deepEqual(r, { writable: false, why: "read-only mount" });
});

Deno.test("checkSocketDirWritable() on a writable mount decides from owner, mode and root", () => {
  const dir = (uid: number, mode: number, me: number) =>
    checkSocketDirWritable(SOCK, fakeFs(me, { [DIR]: { uid, mode } }, "ENOENT")).writable;
  assert.equal(dir(1000, 0o40700, 1000), true);
  // Ours without a write bit is still ours: a relay chmods 0500 after planting itself.
  assert.equal(dir(1000, 0o40500, 1000), true);
  assert.equal(dir(1001, 0o40755, 1000), false);
  assert.equal(dir(0, 0o40755, 1000), false);
  assert.equal(dir(0, 0o40775, 1000), true); // group-writable: we do not resolve groups
  assert.equal(dir(1000, 0o40500, 0), true); // root writes anything on a writable mount
});

Deno.test("writableDirMessage() says why, the read-only mount string and the opt-out key", () => {
  const m = writableDirMessage(SOCK, "read-write");
  assert.match(m, /type=bind,source=.*,target=\/run\/gcp-gate,readonly/);
  assert.match(m, /allow_writable_socket_dir = true/);
  assert.doesNotMatch(m, /\n/);
});

Deno.test("checkSocketTrust() as root accepts the owner of a private directory (root container, host user's mount)", () => {
  checkSocketTrust(
    SOCK,
    fakeFs(0, {
      [SOCK]: { uid: 1000, mode: 0o140600, socket: true },
      [DIR]: { uid: 1000, mode: 0o40700 },
    }),
  );
  // …but not a socket of another uid than the directory's owner.
  const msg = refusal(() =>
    checkSocketTrust(
      SOCK,
      fakeFs(0, {
        [SOCK]: { uid: 1001, mode: 0o140600, socket: true },
        [DIR]: { uid: 1000, mode: 0o40700 },
      }),
    )
  );
  assert.match(msg, /belongs to uid 1001, not to you \(uid 0\)/);
});

Deno.test("checkedThrough() checks the pinned directory, and messages name the configured path", () => {
  const seen: string[] = [];
  const base = fakeFs(1000, { [DIR]: { uid: 1000, mode: 0o40700 } }, "EROFS");
  const deps = checkedThrough(
    {
      stat: (p) => (seen.push(`stat ${p}`), base.stat(p === "/proc/self/fd/7" ? DIR : SOCK)),
      uid: base.uid,
      renameOnto: (p) => (seen.push(`rename ${p}`), base.renameOnto(SOCK)),
    },
    SOCK,
    "/proc/self/fd/7",
  );
  assert.equal(checkSocketDirWritable(SOCK, deps).writable, false);
  assert.ok(seen.includes(`rename /proc/self/fd/7/${SOCK.slice(SOCK.lastIndexOf("/") + 1)}`));
  assert.ok(
    !seen.some((s) => s.endsWith(` ${SOCK}`)),
    "the configured path was never used for I/O",
  );
});
