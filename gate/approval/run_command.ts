/**
 * Running a dialog program (zenity, osascript) that must die when the asking
 * client goes away or when it hangs: a dialog left on screen after its
 * request is gone could be clicked by a human who thinks it is still live.
 */

/** What a finished dialog program reported. */
export interface CommandResult {
  /** Exit code; 128+n when killed by signal n. */
  readonly code: number;
  /** True when we killed it (abort or hard timeout). */
  readonly killed: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options for one {@linkcode RunCommand} call. */
export interface RunCommandOptions {
  /** Kill the program when this aborts (client disconnected). */
  signal: AbortSignal;
  /** Kill the program when it runs this long (ms). */
  killAfterMs: number;
  /** Text for its stdin (closed right after). */
  stdin?: string;
}

/** Runs `path args…` to completion; never throws for a non-zero exit. */
export type RunCommand = (
  path: string,
  args: readonly string[],
  options: RunCommandOptions,
) => Promise<CommandResult>;

/** Output kept from a dialog program: it is only read for its button and error lines. */
const MAX_OUTPUT = 16 * 1024;

async function readCapped(stream: ReadableStream<Uint8Array>): Promise<string> {
  const decoder = new TextDecoder();
  let out = "";
  for await (const chunk of stream) {
    if (out.length < MAX_OUTPUT) out += decoder.decode(chunk, { stream: true });
  }
  return out.slice(0, MAX_OUTPUT);
}

/** The real {@linkcode RunCommand}: Deno.Command, SIGTERM then SIGKILL. */
export async function runCommand(
  path: string,
  args: readonly string[],
  options: RunCommandOptions,
): Promise<CommandResult> {
  const child = new Deno.Command(path, {
    args: [...args],
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let killed = false;
  let forceTimer: ReturnType<typeof setTimeout> | undefined;
  const kill = (): void => {
    if (killed) return;
    killed = true;
    try {
      child.kill("SIGTERM");
    } catch { /* already exited */ }
    // A program that ignores SIGTERM still goes.
    forceTimer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
    }, 2000);
  };
  const hardTimer = setTimeout(kill, options.killAfterMs);
  options.signal.addEventListener("abort", kill, { once: true });
  if (options.signal.aborted) kill();
  try {
    if (options.stdin !== undefined) {
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(options.stdin)).catch(() => {});
      await w.close().catch(() => {});
    }
    const [stdout, stderr, status] = await Promise.all([
      readCapped(child.stdout),
      readCapped(child.stderr),
      child.status,
    ]);
    return { code: status.code, killed, stdout, stderr };
  } finally {
    clearTimeout(hardTimer);
    clearTimeout(forceTimer);
    options.signal.removeEventListener("abort", kill);
  }
}
