/**
 * Container-side checks on the gate socket, run before a role talks to it.
 *
 * On the laptop the gate creates its socket in its own 0700 directory. On a
 * remote host the socket is created by sshd (RemoteForward), and inside a
 * container it is whatever the mount shows: the container-side roles cannot
 * rely on the gate's own checks, so they check what they connect to.
 *
 * - {@linkcode checkSocketTrust}: the socket must be owned by us (or by root,
 *   who can replace any socket anyway: the case of a rootless container
 *   where your host uid shows as root; or, when we are root, by the owner of
 *   its private directory: a root container user with the host user's mount)
 *   and must not be group/other accessible. Another user on a shared host could otherwise plant a socket
 *   that harvests with-prod requests (command, approval code, session id).
 * - {@linkcode checkSocketDirWritable}: whether *we* can replace the socket.
 *   A same-uid process that can rename `gate.sock` can listen in its place
 *   and relay: the human approves the real request, the relay keeps the
 *   session. A read-only bind mount still allows connect() but makes rename
 *   fail with EROFS, which is how it is detected (mode bits of a read-only
 *   mount look normal).
 */
import { GateError } from "./errors.ts";
import { basename, dirname } from "./path.ts";

/** What the checks need from the system (injected so tests need no second user). */
export interface SocketTrustDeps {
  /** `stat` (follows symlinks: what connect() will reach). */
  stat(path: string): Deno.FileInfo;
  /** The caller's uid. */
  uid(): number;
  /** `rename(path, path)`: a no-op on a writable mount, EROFS on a read-only one. */
  renameOnto(path: string): void;
}

/** The real system. Needs read+write on the socket path, read on its directory, sys uid. */
export const SYSTEM_SOCKET_TRUST_DEPS: SocketTrustDeps = {
  stat: (p) => Deno.statSync(p),
  uid: () => Deno.uid() ?? -1,
  renameOnto: (p) => Deno.renameSync(p, p),
};

/**
 * The same checks, made through `dirPath` (a pinned directory's
 * `/proc/self/fd/<n>`, see wrap/pinned_dir.ts) while messages keep naming
 * the configured `socketPath`: what is checked is what will be connected to.
 */
export function checkedThrough(
  base: SocketTrustDeps,
  socketPath: string,
  dirPath: string,
): SocketTrustDeps {
  const dir = dirname(socketPath);
  const through = `${dirPath}/${basename(socketPath)}`;
  const map = (p: string): string => p === socketPath ? through : p === dir ? dirPath : p;
  return {
    stat: (p) => base.stat(map(p)),
    uid: () => base.uid(),
    renameOnto: (p) => base.renameOnto(map(p)),
  };
}

/** The mount option that fixes a writable socket directory, as devcontainer.json's string form. */
export const READONLY_MOUNT_HINT =
  'mount the socket directory read-only: "type=bind,source=<gate socket dir>,target=/run/gcp-gate,readonly" (string form in devcontainer.json; the object form drops readonly)';

function octal(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, "0");
}

/**
 * Throws GateError `untrusted_socket` when the socket at `path` is not one we
 * may trust. A missing socket passes: connecting to it then fails with the
 * gate client's own "not found" message (likewise one we may not stat).
 */
export function checkSocketTrust(path: string, deps: SocketTrustDeps): void {
  let st: Deno.FileInfo;
  try {
    st = deps.stat(path);
  } catch (err) {
    // Missing, or not ours to reach: connect() fails the same way, and the
    // gate client's message for it says what to do.
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.PermissionDenied) return;
    throw new GateError("untrusted_socket", `cannot check gate socket ${path}: ${String(err)}`);
  }
  if (!st.isSocket) return; // the gate client says "not a socket — check socket_path"
  const me = deps.uid();
  const owner = st.uid ?? -1;
  const dir = dirname(path);
  let dst: Deno.FileInfo;
  try {
    dst = deps.stat(dir);
  } catch (err) {
    throw new GateError("untrusted_socket", `cannot check ${dir}: ${String(err)}`);
  }
  const dirOwner = dst.uid ?? -1;
  const dirMode = (dst.mode ?? 0) & 0o1777;
  const othersWrite = (dirMode & 0o022) !== 0 && (dirMode & 0o1000) === 0;
  // Root in a container (remoteUser root) sees the host user's socket in the
  // host user's mounted directory: only that user (or root) could have put it
  // there, and root chose this socket_path, so that owner is accepted too.
  const rootUsingOwnersDir = me === 0 && owner === dirOwner && !othersWrite;
  if (owner !== me && owner !== 0 && !rootUsingOwnersDir) {
    throw new GateError(
      "untrusted_socket",
      `refusing gate socket ${path}: it belongs to uid ${owner}, not to you (uid ${me}), so another user may have planted it; remove it and reconnect the gate (ssh RemoteForward or the mount) as uid ${me}`,
    );
  }
  const mode = (st.mode ?? 0) & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new GateError(
      "untrusted_socket",
      `refusing gate socket ${path}: mode ${
        octal(mode)
      } lets other users reach it; it must be 0600 (gcp-gate creates it so; over ssh set StreamLocalBindMask 0177, the default)`,
    );
  }
  // Another user who can write the directory can replace the socket between
  // this check and our connect(); the sticky bit stops that (as in /tmp).
  if ((dirOwner !== me && dirOwner !== 0 && !rootUsingOwnersDir) || othersWrite) {
    throw new GateError(
      "untrusted_socket",
      `refusing gate socket ${path}: its directory ${dir} (uid ${dirOwner}, mode ${
        octal(dirMode)
      }) lets another user replace it; use a directory of your own with mode 0700`,
    );
  }
}

/** The `why` of {@linkcode checkSocketDirWritable} when the directory is on a read-only mount. */
export const READ_ONLY_MOUNT = "read-only mount";

/** Whether the caller can replace the socket, and why. */
export interface DirWritability {
  readonly writable: boolean;
  /** One phrase for messages, e.g. "read-only mount". */
  readonly why: string;
}

/**
 * Whether we can rename entries in the socket's directory. Only a read-only
 * mount (EROFS) is proof that we cannot. On a writable mount the decision is
 * conservative: a directory we own counts as writable whatever its mode (we
 * can chmod it back: a relay would chmod 0500 after planting itself), a
 * group- or other-writable one too (we do not resolve our groups or ACLs),
 * and root can write any directory.
 */
export function checkSocketDirWritable(path: string, deps: SocketTrustDeps): DirWritability {
  try {
    deps.renameOnto(path);
  } catch (err) {
    if ((err as { code?: string }).code === "EROFS") {
      return { writable: false, why: READ_ONLY_MOUNT };
    }
    // ENOENT (no socket yet) or anything else: decide from the mode bits.
  }
  const dir = dirname(path);
  let st: Deno.FileInfo;
  try {
    st = deps.stat(dir);
  } catch {
    return { writable: false, why: `${dir} cannot be read` };
  }
  const me = deps.uid();
  const mode = (st.mode ?? 0) & 0o777;
  if (me === 0) return { writable: true, why: `${dir} is on a writable mount and you are root` };
  if (st.uid === me) {
    return {
      writable: true,
      why: `${dir} is yours (mode ${octal(mode)}; you can change it) on a writable mount`,
    };
  }
  if ((mode & 0o022) !== 0) {
    return { writable: true, why: `${dir} is group/other writable (mode ${octal(mode)})` };
  }
  return { writable: false, why: `${dir} is not writable by you (mode ${octal(mode)})` };
}

/** The one line with-prod prints when it refuses a writable socket directory. */
export function writableDirMessage(path: string, why: string): string {
  return `refusing to ask for prod access through ${path}: its directory is not a read-only mount (${why}), so a process in the container could replace the socket (or have planted the directory) and relay your approval; ${READONLY_MOUNT_HINT}. To accept the risk, set allow_writable_socket_dir = true`;
}
