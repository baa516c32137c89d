/**
 * The build's steps that do not depend on the permission table: running a
 * command, bundling an entry, warming Deno's cache (scripts/build.ts runs them).
 */

/** Runs `cmd`; throws with its stderr when it fails, prints it unless `quiet`. */
export async function run(cmd: string[], quiet: boolean): Promise<void> {
  const out = await new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr);
    throw new Error(`${cmd.join(" ")} failed:\n${err}`);
  }
  if (!quiet) Deno.stderr.writeSync(out.stderr);
}

/** True when `p` exists (any kind of file). */
export function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** The short commit of HEAD, or "unknown" outside a checkout. */
export async function gitCommit(): Promise<string> {
  try {
    const out = await new Deno.Command("git", {
      args: ["rev-parse", "--short=12", "HEAD"],
      stdout: "piped",
      stderr: "null",
    }).output();
    const s = new TextDecoder().decode(out.stdout).trim();
    return out.success && s ? s : "unknown";
  } catch {
    return "unknown";
  }
}

/** `deno bundle` of `entry` into `out`, stamped with `commit`, replaced atomically. */
export async function bundle(
  entry: string,
  out: string,
  commit: string,
  quiet: boolean,
): Promise<void> {
  // Build beside the target and rename: a launcher started meanwhile never sees half a file.
  const tmp = out.replace(/\.js$/, `.${Deno.pid}.tmp.js`);
  await run([
    Deno.execPath(),
    "bundle",
    "--quiet",
    "--platform",
    "deno",
    "--minify",
    entry,
    "-o",
    tmp,
  ], quiet);
  const js = Deno.readTextFileSync(tmp);
  Deno.writeTextFileSync(tmp, js.replaceAll("__GCP_GATE_COMMIT__", commit));
  Deno.renameSync(tmp, out);
}

/**
 * Fills Deno's cache from ONE process before the parallel bundles start.
 * On a cold cache, concurrent `deno bundle` calls race to copy esbuild into
 * $DENO_DIR/dl (`failed to copy esbuild binary … No such file or directory`,
 * about one cold build in three): `deno cache` fetches every npm package the
 * entries import, then bundling resolve.ts alone installs esbuild.
 */
export async function warmCache(
  entries: readonly string[],
  commit: string,
  quiet: boolean,
): Promise<void> {
  await run([Deno.execPath(), "cache", "--quiet", ...entries], quiet);
  await bundle("scripts/resolve.ts", "dist/lib/resolve.js", commit, quiet);
}
