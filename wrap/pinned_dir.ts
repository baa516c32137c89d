/**
 * The gate socket's directory, opened once and reached through
 * `/proc/self/fd/<n>` from then on.
 *
 * Why: with-prod checks the socket's directory (a read-only mount, owner,
 * mode) and then talks to the gate for minutes. A path is looked up again on
 * every connect, so whoever can rename one of its *ancestors* (root in a
 * container, where `/run` is rarely a mount of its own) can swap in a
 * directory holding a relay between the check and `POST /session` — the
 * read-only mount point itself cannot be renamed, its parent can. An
 * `O_PATH` descriptor names the directory inode itself: every check and every
 * connection through `/proc/self/fd/<n>/<socket>` reaches the directory that
 * was checked, whatever happens to the names above it.
 *
 * Deno exposes no descriptor numbers, so the directory is opened with libc's
 * `open(2)` over FFI (with-prod already runs with --allow-all). Linux only;
 * elsewhere {@linkcode pinDirectory} returns undefined and callers use the
 * path (documented as the weaker check).
 */

/** An open directory and the path that reaches it whatever its name becomes. */
export interface PinnedDir {
  /** `/proc/self/fd/<n>`: resolves to the pinned directory, never to a renamed-in one. */
  readonly path: string;
  close(): void;
}

// asm-generic values (x86_64 and arm64 alike).
const O_DIRECTORY = 0o200000;
const O_CLOEXEC = 0o2000000;
const O_PATH = 0o10000000;

const SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
} as const;

/** glibc, else musl (Alpine) — the names their loaders know. */
const LIBC_NAMES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1"];

function openLibc(): Deno.DynamicLibrary<typeof SYMBOLS> | undefined {
  for (const name of LIBC_NAMES) {
    try {
      return Deno.dlopen(name, SYMBOLS);
    } catch { /* the next name */ }
  }
  return undefined;
}

/**
 * Opens `dir` (following symlinks, as connect() would) and returns its
 * `/proc/self/fd` path, or undefined where that cannot be done (not Linux, no
 * libc over FFI, the directory missing or unreadable).
 */
export function pinDirectory(dir: string): PinnedDir | undefined {
  if (Deno.build.os !== "linux") return undefined;
  const lib = openLibc();
  if (!lib) return undefined;
  const fd = lib.symbols.open(
    new TextEncoder().encode(`${dir}\0`),
    O_PATH | O_DIRECTORY | O_CLOEXEC,
  );
  if (fd < 0) {
    lib.close();
    return undefined;
  }
  const path = `/proc/self/fd/${fd}`;
  try {
    // The descriptor is only useful if /proc shows it (a sandbox may hide /proc).
    if (!Deno.statSync(path).isDirectory) throw new Error("not a directory");
  } catch {
    lib.symbols.close(fd);
    lib.close();
    return undefined;
  }
  let open = true;
  return {
    path,
    close() {
      if (!open) return;
      open = false;
      lib.symbols.close(fd);
      lib.close();
    },
  };
}
