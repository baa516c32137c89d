/**
 * Writing a kubeconfig without ever leaving it half-written: temp file in the
 * same directory (so rename is atomic), original mode, fsync, rename. A
 * symlinked kubeconfig is written through to its target, so the link (often
 * into a dotfiles repo) stays a link.
 */
import { GateError } from "../shared/errors.ts";

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

function basename(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}

/** The file a write to `path` really changes (symlinks followed). */
export function writeTarget(path: string): string {
  try {
    return Deno.realPathSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return path;
    throw err;
  }
}

function randomSuffix(): string {
  const b = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function describe(err: unknown): string {
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.NotCapable) return "outside this program's sandbox";
  return (err as Error)?.message?.split("\n")[0] ?? String(err);
}

/**
 * Creates `path` (never an existing file or symlink: createNew), writes and
 * fsyncs `data`, then sets `mode` (after creation: the create mode is
 * filtered by the umask).
 */
function createSynced(path: string, data: Uint8Array, mode: number): void {
  const f = Deno.openSync(path, { write: true, createNew: true, mode: 0o600 });
  try {
    let off = 0;
    while (off < data.length) off += f.writeSync(data.subarray(off));
    f.syncSync();
  } finally {
    f.close();
  }
  Deno.chmodSync(path, mode & 0o777);
}

/**
 * Replaces the file at `path` (its symlink target, if it is one) with `data`,
 * atomically, with permission bits `mode`.
 */
export function writeFileAtomic(path: string, data: Uint8Array, mode: number): void {
  const target = writeTarget(path);
  const dir = dirname(target);
  const tmp = `${dir}/.${basename(target)}.gcp-kube-setup-${randomSuffix()}.tmp`;
  try {
    createSynced(tmp, data, mode);
    Deno.renameSync(tmp, target);
  } catch (err) {
    try {
      Deno.removeSync(tmp);
    } catch { /* not created */ }
    throw new GateError(
      "forbidden",
      `cannot write ${target} (${
        describe(err)
      }); make its directory ${dir} writable, or pass --kubeconfig with a writable copy`,
      { cause: err },
    );
  }
  // Make the rename itself durable; some filesystems refuse fsync on a directory.
  try {
    const d = Deno.openSync(dir, { read: true });
    try {
      d.syncSync();
    } finally {
      d.close();
    }
  } catch { /* best effort */ }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function readIfExists(path: string): Uint8Array | undefined {
  try {
    return Deno.readFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** Where a backup went. */
export interface BackupResult {
  readonly path: string;
  /** False when an identical backup already existed. */
  readonly created: boolean;
  /** An older, different backup that was kept (so the new one got a number). */
  readonly keptOlder: string | undefined;
}

/**
 * Backs `data` up as `<path>.bak` once. An existing, different `.bak` is never
 * overwritten: the new backup becomes `<path>.bak.1`, `.bak.2`, ….
 */
export function backupOnce(path: string, data: Uint8Array, mode: number): BackupResult {
  const first = `${path}.bak`;
  let keptOlder: string | undefined;
  for (let n = 0; n < 1000; n++) {
    const candidate = n === 0 ? first : `${first}.${n}`;
    const existing = readIfExists(candidate);
    if (existing === undefined) {
      writeNew(candidate, data, mode);
      return { path: candidate, created: true, keptOlder };
    }
    if (sameBytes(existing, data)) return { path: candidate, created: false, keptOlder };
    keptOlder = candidate;
  }
  throw new GateError(
    "forbidden",
    `too many backups of ${path} (${first}.1 … .999); delete old ones and run again`,
  );
}

function writeNew(path: string, data: Uint8Array, mode: number): void {
  try {
    // Same mode as the kubeconfig: the backup holds the same cluster secrets.
    createSynced(path, data, mode);
  } catch (err) {
    throw new GateError(
      "forbidden",
      `cannot write the backup ${path} (${describe(err)}); nothing was changed`,
      { cause: err },
    );
  }
}

/** Backups of `path`, newest first (`.bak.N` … `.bak.1`, `.bak`), as text. */
export function readBackups(path: string): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  const first = `${path}.bak`;
  for (let n = 0; n < 1000; n++) {
    const candidate = n === 0 ? first : `${first}.${n}`;
    const data = readIfExists(candidate);
    if (data === undefined) break;
    out.unshift({ path: candidate, text: new TextDecoder().decode(data) });
  }
  return out;
}
