/**
 * Executable-sourced external accounts (Google's "pluggable auth", AIP-4117):
 * `credential_source.executable` names a program (e.g. a wrapper around
 * `spire-agent api fetch jwt`) that prints a subject token as JSON; the gate
 * exchanges it at STS like a file- or URL-sourced one.
 *
 * The contract, as Google's libraries implement it:
 * - nothing runs unless GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1;
 * - `command` is an absolute path plus arguments split on whitespace;
 *   `timeout_millis` 5000…120000 (default 30000);
 * - the program gets GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE, _TOKEN_TYPE,
 *   _INTERACTIVE=0, and _IMPERSONATED_EMAIL / _OUTPUT_FILE when they apply;
 * - it prints `{version: 1, success, token_type, id_token | saml_response,
 *   expiration_time}` or `{version: 1, success: false, code, message}`;
 * - with `output_file`, an unexpired successful response found there is used
 *   without running the program (the program writes that file, not us).
 */
import { GateError } from "../shared/errors.ts";
import { sanitizeMessage } from "../shared/redact.ts";

/** Google's opt-in variable: executables run only when it is "1". */
export const ALLOW_EXECUTABLES_ENV = "GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES";

const TIMEOUT_DEFAULT_MS = 30_000;
const TIMEOUT_MIN_MS = 5_000;
const TIMEOUT_MAX_MS = 120_000;
/** Most bytes read from the program's stdout or stderr (a JWT is a few KiB). */
export const MAX_OUTPUT_BYTES = 64 * 1024;

const OIDC_TYPES = new Set([
  "urn:ietf:params:oauth:token-type:jwt",
  "urn:ietf:params:oauth:token-type:id_token",
]);
const SAML_TYPE = "urn:ietf:params:oauth:token-type:saml2";

/** `command` split the way Google's libraries split it: on whitespace. */
export function executableCommand(command: string): string[] {
  return command.trim().split(/\s+/).filter((s) => s !== "");
}

/** The parsed `credential_source.executable` object. */
export interface ExecutableSource {
  readonly argv: readonly string[];
  readonly timeoutMs: number;
  readonly outputFile: string | undefined;
}

/** What one run of the program produced. */
export interface ProgramResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/** Runs `argv` with `env` added to the inherited environment. */
export type RunProgram = (
  argv: readonly string[],
  options: { env: Record<string, string>; timeoutMs: number },
) => Promise<ProgramResult>;

/** Dependencies of {@linkcode executableSubjectToken}. */
export interface ExecutableDeps {
  /** GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES is "1". */
  readonly allowExecutables: boolean;
  readonly run: RunProgram;
  readonly readFile: (path: string) => string | undefined;
  readonly now: () => number;
}

/** What the STS exchange is for: passed to the program in its environment. */
export interface ExecutableContext {
  readonly audience: string;
  readonly subjectTokenType: string;
  readonly impersonatedEmail: string | undefined;
}

function configError(message: string): GateError {
  return new GateError("config", message, { status: 503 });
}

/** Validates `credential_source.executable`; `bad(what)` reports an incomplete ADC file. */
export function parseExecutableSource(
  exe: Record<string, unknown>,
  bad: (what: string) => never,
): ExecutableSource {
  const command = typeof exe.command === "string" ? exe.command : "";
  const argv = executableCommand(command);
  if (argv.length === 0) return bad("credential_source.executable has no command");
  if (!argv[0]!.startsWith("/")) {
    return bad(
      `credential_source.executable.command must start with an absolute path, not ${
        JSON.stringify(argv[0]!.slice(0, 100))
      }`,
    );
  }
  const t = exe.timeout_millis;
  let timeoutMs = TIMEOUT_DEFAULT_MS;
  if (t !== undefined) {
    if (typeof t !== "number" || !Number.isInteger(t) || t < TIMEOUT_MIN_MS || t > TIMEOUT_MAX_MS) {
      return bad(
        `credential_source.executable.timeout_millis must be ${TIMEOUT_MIN_MS}…${TIMEOUT_MAX_MS}`,
      );
    }
    timeoutMs = t;
  }
  const out = exe.output_file;
  if (out !== undefined && (typeof out !== "string" || !out.startsWith("/"))) {
    return bad("credential_source.executable.output_file must be an absolute path");
  }
  return { argv, timeoutMs, outputFile: out };
}

/** A response that says "run the program again" rather than "fail". */
class StaleResponse extends Error {}

/**
 * The subject token in a response; throws GateError for a failure response
 * or a malformed one, StaleResponse for an expired one.
 */
export function parseExecutableResponse(
  text: string,
  options: { program: string; requireExpiration: boolean; now: number },
): string {
  const what = `the credential source program ${options.program}`;
  const malformed = (detail: string): GateError =>
    new GateError("upstream", `${what} printed an invalid response (${detail})`);
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(text);
  } catch {
    throw malformed("not JSON");
  }
  if (r === null || typeof r !== "object" || Array.isArray(r)) throw malformed("not an object");
  if (typeof r.version !== "number") throw malformed("no version");
  if (r.version > 1) throw malformed(`unsupported version ${r.version}`);
  if (typeof r.success !== "boolean") throw malformed("no success field");
  if (!r.success) {
    if (r.code === undefined || r.message === undefined) throw malformed("no code and message");
    throw new GateError(
      "upstream",
      `${what} reported failure: code ${sanitizeMessage(String(r.code), 40)}: ${
        sanitizeMessage(String(r.message), 200)
      }`,
    );
  }
  const exp = r.expiration_time;
  if (exp !== undefined && typeof exp !== "number") throw malformed("expiration_time not a number");
  if (typeof exp === "number" && exp * 1000 <= options.now) throw new StaleResponse("expired");
  if (exp === undefined && options.requireExpiration) {
    throw malformed("no expiration_time, which is required when output_file is set");
  }
  const field = OIDC_TYPES.has(String(r.token_type))
    ? "id_token"
    : r.token_type === SAML_TYPE
    ? "saml_response"
    : undefined;
  if (!field) throw malformed(`unsupported token_type ${JSON.stringify(String(r.token_type))}`);
  const token = r[field];
  if (typeof token !== "string" || token === "") throw malformed(`no ${field}`);
  return token;
}

/** An unexpired successful response cached in `output_file`, if any. */
function cachedToken(src: ExecutableSource, deps: ExecutableDeps): string | undefined {
  if (!src.outputFile) return undefined;
  let text: string | undefined;
  try {
    text = deps.readFile(src.outputFile);
  } catch {
    return undefined;
  }
  if (text === undefined || text.trim() === "") return undefined;
  try {
    // A cached response must carry expiration_time; anything else (expired,
    // failed, malformed) means "run the program", as Google's libraries do.
    return parseExecutableResponse(text, {
      program: src.argv[0]!,
      requireExpiration: true,
      now: deps.now(),
    });
  } catch {
    return undefined;
  }
}

/** Runs (or reads the cached answer of) the program; the subject token. */
export async function executableSubjectToken(
  src: ExecutableSource,
  ctx: ExecutableContext,
  deps: ExecutableDeps,
): Promise<string> {
  const program = src.argv[0]!;
  if (!deps.allowExecutables) {
    throw configError(
      `the ADC file names a credential source program (${program}), which runs only when ${ALLOW_EXECUTABLES_ENV}=1 is set in the gate's environment; set it and restart the gate`,
    );
  }
  const cached = cachedToken(src, deps);
  if (cached !== undefined) return cached;
  const env: Record<string, string> = {
    GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: ctx.audience,
    GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE: ctx.subjectTokenType,
    GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE: "0",
  };
  if (ctx.impersonatedEmail) env.GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL = ctx.impersonatedEmail;
  if (src.outputFile) env.GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE = src.outputFile;
  const res = await deps.run(src.argv, { env, timeoutMs: src.timeoutMs });
  if (res.timedOut) {
    throw new GateError(
      "timeout",
      `the credential source program ${program} did not finish within ${src.timeoutMs} ms (timeout_millis); it was killed`,
    );
  }
  if (res.code !== 0) {
    // stderr only: stdout may hold a token even on failure.
    const hint = res.stderr.trim() ? ` (stderr: ${sanitizeMessage(res.stderr.trim(), 200)})` : "";
    throw new GateError(
      "upstream",
      `the credential source program ${program} exited with code ${res.code}${hint}`,
    );
  }
  let text = res.stdout;
  if (text.trim() === "" && src.outputFile) text = deps.readFile(src.outputFile) ?? "";
  try {
    return parseExecutableResponse(text, {
      program,
      requireExpiration: src.outputFile !== undefined,
      now: deps.now(),
    });
  } catch (err) {
    if (err instanceof StaleResponse) {
      throw new GateError(
        "upstream",
        `the credential source program ${program} printed an expired token`,
      );
    }
    throw err;
  }
}

/** Reads a stream up to MAX_OUTPUT_BYTES (the rest is drained and dropped); cancellable. */
function readCapped(stream: ReadableStream<Uint8Array>): { text: Promise<string>; cancel(): void } {
  const reader = stream.getReader();
  const read = async (): Promise<string> => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        if (size < MAX_OUTPUT_BYTES) chunks.push(value.subarray(0, MAX_OUTPUT_BYTES - size));
        size += value.length;
      }
    } catch { /* cancelled after a timeout */ }
    const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      all.set(c, at);
      at += c.length;
    }
    return new TextDecoder().decode(all);
  };
  return { text: read(), cancel: () => void reader.cancel().catch(() => {}) };
}

/** Why the program could not be started, as one actionable line. */
function spawnError(program: string, err: unknown): GateError {
  const what = `the credential source program ${program}`;
  if (err instanceof Deno.errors.NotCapable) {
    // The grant is resolved from the ADC file when the gate starts.
    return new GateError(
      "config",
      `the gate may not run ${what}: its launcher grants the program named in the ADC file at start (with ${ALLOW_EXECUTABLES_ENV}=1); restart the gate after changing either`,
      { status: 503, cause: err },
    );
  }
  if (err instanceof Deno.errors.NotFound) {
    return new GateError("config", `${what} does not exist`, { status: 503, cause: err });
  }
  return new GateError(
    "upstream",
    `${what} cannot be started (${sanitizeMessage(String((err as Error)?.message), 200)})`,
    { cause: err },
  );
}

/**
 * The real {@linkcode RunProgram}: no stdin, output capped, SIGKILL at the
 * deadline. After a kill we stop reading at once: a grandchild still holding
 * the pipe (a script's `sleep`) must not hold the gate past the deadline.
 */
export async function runProgram(
  argv: readonly string[],
  options: { env: Record<string, string>; timeoutMs: number },
): Promise<ProgramResult> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(argv[0]!, {
      args: argv.slice(1),
      env: options.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (err) {
    throw spawnError(argv[0]!, err);
  }
  const out = readCapped(child.stdout);
  const err = readCapped(child.stderr);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), options.timeoutMs);
  });
  const finished = Promise.all([child.status, out.text, err.text]);
  const first = await Promise.race([finished, deadline]);
  clearTimeout(timer);
  if (first === "timeout") {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    out.cancel();
    err.cancel();
    await child.status;
    return { code: -1, stdout: "", stderr: "", timedOut: true };
  }
  const [status, stdout, stderr] = first;
  return { code: status.code, stdout, stderr, timedOut: false };
}
