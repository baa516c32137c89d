/**
 * The one place each executable turns errors into exit codes. User errors
 * print one line, never a stack trace.
 */
import { type CliSpec, helpText, type Invocation, loadInvocation } from "./config.ts";
import { EXIT, GateError } from "./errors.ts";
import { versionString } from "./version.ts";
import { sanitizeMessage } from "./redact.ts";

const encoder = new TextEncoder();

/** Writes one line to stderr. */
export function printError(program: string, message: string): void {
  Deno.stderr.writeSync(encoder.encode(`${program}: ${sanitizeMessage(message, 2000)}\n`));
}

/** Writes `text` (plus newline) to stdout: the program's product. */
export function printOut(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text.endsWith("\n") ? text : text + "\n"));
}

/** Reads a file's text; undefined when it does not exist. */
export function readTextFileIfExists(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** Reads an env var; a variable the role may not read counts as unset. */
export function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable) return undefined;
    throw err;
  }
}

/** Parses the command line for `spec` (prints help/version and exits). */
export function parseInvocation(spec: CliSpec, args: readonly string[]): Invocation | number {
  let inv: Invocation;
  try {
    inv = loadInvocation(spec, args, {
      env: readEnv,
      readTextFile: readTextFileIfExists,
      cwd: () => Deno.cwd(),
    });
  } catch (err) {
    return reportError(spec.role, err);
  }
  if (inv.help) {
    printOut(helpText(spec, versionString()));
    return EXIT.OK;
  }
  if (inv.version) {
    printOut(`${spec.role} ${versionString()}`);
    return EXIT.OK;
  }
  return inv;
}

/** Prints `err` as one line and returns the exit code it maps to. */
export function reportError(program: string, err: unknown): number {
  if (err instanceof GateError) {
    printError(program, err.message);
    if (err.code === "usage") {
      printError(program, `run '${program} --help' for usage`);
      return EXIT.USAGE;
    }
    return err.code === "config" ? EXIT.USAGE : EXIT.FAILURE;
  }
  if (err instanceof Deno.errors.NotCapable) {
    printError(
      program,
      `blocked by the sandbox: ${
        (err as Error).message.split(",")[0]
      } — this role's permissions do not allow it`,
    );
    return EXIT.FAILURE;
  }
  // A bug, not a user error: keep the stack for the report.
  printError(program, `internal error: ${(err as Error)?.stack ?? String(err)}`);
  return EXIT.FAILURE;
}

/** Runs `main` and exits with its code; errors are reported once here. */
export async function runMain(program: string, main: () => Promise<number>): Promise<never> {
  let code: number;
  try {
    code = await main();
  } catch (err) {
    code = reportError(program, err);
  }
  Deno.exit(code);
}
