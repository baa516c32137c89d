/**
 * Preparing the gate's socket path safely. The socket directory is the only
 * thing between a container and the credentials, so we refuse rather than
 * repair anything we did not create ourselves.
 */
import { GateError } from "../shared/errors.ts";

/** Dependencies (real Deno calls in production, real temp dirs in tests). */
export interface SocketDeps {
  uid: () => number | null;
  /** Answers true when a live gate responds on `path`. */
  isLive: (path: string) => Promise<boolean>;
}

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

/**
 * Makes sure `dir` is a private directory of ours: creates it 0700 when
 * missing; refuses a symlink, a foreign owner or any group/other bits.
 */
export function ensurePrivateDir(dir: string, deps: Pick<SocketDeps, "uid">): void {
  let st: Deno.FileInfo;
  try {
    st = Deno.lstatSync(dir);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    // Only the leaf is ours to create; a missing parent is the user's to make.
    try {
      Deno.mkdirSync(dir, { mode: 0o700 });
    } catch (mkErr) {
      if (mkErr instanceof Deno.errors.NotFound) {
        throw new GateError(
          "unsafe_path",
          `cannot create ${dir}: its parent directory ${dirname(dir)} does not exist`,
        );
      }
      throw mkErr;
    }
    // mkdir's mode is filtered by the umask; set it explicitly on what we created.
    Deno.chmodSync(dir, 0o700);
    return;
  }
  if (st.isSymlink) {
    throw new GateError(
      "unsafe_path",
      `socket directory ${dir} is a symlink; refusing (it could point anywhere). Remove it or choose another socket_path`,
    );
  }
  if (!st.isDirectory) {
    throw new GateError("unsafe_path", `socket directory ${dir} is not a directory`);
  }
  const uid = deps.uid();
  if (uid !== null && st.uid !== null && st.uid !== uid) {
    throw new GateError(
      "unsafe_path",
      `socket directory ${dir} belongs to uid ${st.uid}, not you (uid ${uid}); choose a directory you own`,
    );
  }
  if (st.mode !== null && (st.mode & 0o077) !== 0) {
    // Never chmod a directory we did not create: the user chose its mode.
    throw new GateError(
      "unsafe_path",
      `socket directory ${dir} is accessible to other users (mode ${
        (st.mode & 0o777).toString(8)
      }); run: chmod 700 ${dir}`,
    );
  }
}

/**
 * Prepares `path` for binding: refuses symlinks and non-sockets, refuses when
 * a live gate answers there, removes a stale socket of ours.
 */
export async function prepareSocketPath(path: string, deps: SocketDeps): Promise<void> {
  ensurePrivateDir(dirname(path), deps);
  let st: Deno.FileInfo;
  try {
    st = Deno.lstatSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  if (st.isSymlink) {
    // Refuse even a dangling symlink: following it would let someone else choose where we bind.
    throw new GateError(
      "unsafe_path",
      `${path} is a symlink; refusing to bind there. Remove it: rm ${path}`,
    );
  }
  if (!st.isSocket) {
    throw new GateError(
      "unsafe_path",
      `${path} exists and is not a socket; refusing to replace it. Move it away or choose another socket_path`,
    );
  }
  if (await deps.isLive(path)) {
    throw new GateError(
      "already_running",
      `another gate is already running on ${path}; stop it first`,
    );
  }
  Deno.removeSync(path);
}

/** Removes the socket at `path` only if it is still the one we created. */
export function removeOwnSocket(path: string, ino: number | null): void {
  try {
    const st = Deno.lstatSync(path);
    if (st.isSocket && (ino === null || st.ino === ino)) Deno.removeSync(path);
  } catch { /* already gone */ }
}
