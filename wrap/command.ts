/**
 * Finds the command before anything else happens: a typo must cost neither an
 * approval nor a session (exit 127 like the shell, and the gate is never asked).
 */

/** What {@linkcode resolveCommand} needs to know about a path. */
export interface CommandStat {
  readonly isFile: boolean;
  readonly isDirectory: boolean;
  /** Permission bits; null when the platform has none. */
  readonly mode: number | null;
}

/** Dependencies of {@linkcode resolveCommand}. */
export interface ResolveCommandDeps {
  /** Follows symlinks; undefined when nothing is there. */
  stat(path: string): CommandStat | undefined;
}

/** Options for {@linkcode resolveCommand}. */
export interface ResolveCommandOptions {
  /** The caller's PATH (undefined: the shell's default). */
  readonly path: string | undefined;
  readonly cwd: string;
}

/** A resolved command, or the shell's exit code and message. */
export type ResolvedCommand =
  | { readonly ok: true; readonly path: string }
  | { readonly ok: false; readonly exitCode: 126 | 127; readonly message: string };

const DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin";

export const REAL_STAT: ResolveCommandDeps = {
  stat(path) {
    try {
      const s = Deno.statSync(path);
      return { isFile: s.isFile, isDirectory: s.isDirectory, mode: s.mode };
    } catch {
      return undefined;
    }
  },
};

function executable(s: CommandStat): boolean {
  return s.isFile && (s.mode === null || (s.mode & 0o111) !== 0);
}

/**
 * Resolves `name` the way a POSIX shell does: a name with a slash is used as
 * is (relative to cwd), anything else is looked up in PATH (an empty entry
 * means the current directory). Messages match bash's.
 */
export function resolveCommand(
  name: string,
  options: ResolveCommandOptions,
  deps: ResolveCommandDeps = REAL_STAT,
): ResolvedCommand {
  if (name === "") return { ok: false, exitCode: 127, message: ": command not found" };
  if (name.includes("/")) {
    const full = name.startsWith("/") ? name : `${options.cwd}/${name}`;
    const s = deps.stat(full);
    if (!s) return { ok: false, exitCode: 127, message: `${name}: No such file or directory` };
    if (s.isDirectory) return { ok: false, exitCode: 126, message: `${name}: Is a directory` };
    if (!executable(s)) return { ok: false, exitCode: 126, message: `${name}: Permission denied` };
    return { ok: true, path: full };
  }
  for (const dir of (options.path ?? DEFAULT_PATH).split(":")) {
    const base = dir === "" ? options.cwd : dir.startsWith("/") ? dir : `${options.cwd}/${dir}`;
    const full = `${base}/${name}`;
    const s = deps.stat(full);
    if (s && executable(s)) return { ok: true, path: full };
  }
  return { ok: false, exitCode: 127, message: `${name}: command not found` };
}
