/**
 * Redaction and capping of a command line before a human sees it. The caller
 * (with-prod, in the container) runs it before the argv leaves the container,
 * and the gate runs it again on what arrives: the argv is hostile input that
 * ends up in a dialog, a terminal and the audit log.
 *
 * Order matters: the size caps come first, so no pattern ever sees more than
 * one capped argument (see {@linkcode redactArgv}); then unsafe characters
 * are stripped (a bidi override or a NUL must not split a secret so that no
 * pattern matches); then secrets are redacted on the whole argument (an
 * argument is never cut before redaction: a cut JWT no longer looks like one).
 */
import { LIMITS } from "./protocol.ts";
import { redactText, stripUnsafeChars } from "./redact.ts";
import { findProgram, type FoundProgram, programHit, redactUserinfo } from "./argv_programs.ts";

/** What replaces a secret. Visible on purpose: the human sees that something was hidden. */
export const REDACTED = "[REDACTED]";

/** The caps {@linkcode redactArgv} applies (the same as the gate's protocol limits). */
export const ARGV_CAPS: Readonly<{ maxArgs: number; maxArgChars: number; maxTotalBytes: number }> =
  Object.freeze({
    maxArgs: LIMITS.maxArgs,
    maxArgChars: LIMITS.maxArgChars,
    maxTotalBytes: LIMITS.maxCommandBytes,
  });

/** The result of {@linkcode redactArgv}. */
export interface RedactedArgv {
  /** The argv to show: stripped, redacted and capped. */
  readonly argv: string[];
  /** One line per cap applied, e.g. "argument 3 truncated to 2000 characters". */
  readonly notes: string[];
  /** How many secrets were replaced by {@linkcode REDACTED}. */
  readonly redactions: number;
}

// Names whose value is a secret: `--db-password x`, `--client-secret=x`,
// `API_KEY=x`, `{"token": "x"}`. Broad on purpose: a false positive costs a
// dialog line's readability, a false negative shows a credential to a screen
// (and to the audit log).
//
// Every pattern below runs on container input, so each must be linear in the
// argument's length. An unanchored global pattern that starts with `[…]*`
// restarts at every position and rescans the rest of the run: quadratic (a
// 60 K-character argument froze the gate for seconds). Patterns here are
// either anchored at `^`, or start only where a run of their characters
// starts (a lookbehind), or consume the whole run whether or not it is a
// secret; and no argument longer than the cap reaches any of them.
// `_pwd`/`-pass` only as a suffix (MYSQL_PWD, REDIS_PASS, --db-pass): plain
// PWD is the working directory and "bypass" is not a secret.
const SECRET_WORD =
  "(?:password|passwd|passphrase|secret|token|key|credentials?|auth|[_-]pwd|[_-]pass)";
const NAME_CHAR = String.raw`[A-Za-z0-9_.\-]`;
const SECRET_NAME = `${NAME_CHAR}*${SECRET_WORD}`;

/** A flag whose next argument is its secret value: `--password hunter2`. */
const SECRET_FLAG = new RegExp(String.raw`^--?${SECRET_NAME}$`, "i");
/** A whole argument `NAME=value` (or `--name=value`): everything after `=` is the secret. */
const WHOLE_PAIR = new RegExp(String.raw`^(-{0,2}${SECRET_NAME})=([\s\S]+)$`, "i");
/**
 * `name=` inside a longer argument (URL query, `--set a=1,b_token=2`). The
 * lookbehind starts a match only at the first character of a name, so each
 * run of name characters is scanned once; the name is checked afterwards.
 */
const EMBEDDED_NAME = new RegExp(`(?<!${NAME_CHAR})(${NAME_CHAR}+)=`, "g");
/** A name that ends in a secret word (run on a name already cut out). */
const SECRET_NAME_END = new RegExp(`${SECRET_WORD}$`, "i");
/** The value after an embedded `name=` (sticky: read at one position only). */
const EMBEDDED_VALUE = /[^\s&;,]+/y;
/** `"name": "value"` inside JSON. */
const JSON_PAIR = new RegExp(String.raw`("${SECRET_NAME}"\s*:\s*)"(?:[^"\\]|\\.)*"`, "gi");
/** An HTTP header argument: `Authorization: Basic …`, `X-Api-Key: …`. */
const HEADER = new RegExp(
  String.raw`^((?:authorization|proxy-authorization|cookie|${SECRET_NAME})\s*:\s*)\S[\s\S]*$`,
  "i",
);
/**
 * Where a URL's password starts: after `postgres://user:`. Starts only where a
 * run of scheme characters starts (see above); the password's end is found by
 * {@linkcode redactUrlPasswords}.
 */
const URL_USERINFO = /(?<![a-z0-9+.\-])[a-z0-9+.\-]+:\/\/[^\s:@/?#]*:/gi;
/** Where an authority ends at the latest: a password may hold `/` or `@`, not these. */
const AUTHORITY_END = /[\s?#]/g;
/** `host:8080/…`: a port, not a password (sticky, read at one position). */
const PORT_THEN_PATH = /[0-9]{1,5}\//y;
/** After a password-like flag, what is still read as the next flag rather than its value. */
const PLAIN_FLAG = /^(?:-[A-Za-z]|--[A-Za-z][A-Za-z0-9-]*(?:=[\s\S]*)?|--?)$/;
/** A run of base64/base64url characters long enough to be a key or a token. */
const BLOB = /[A-Za-z0-9+/_\-]{40,}={0,2}/g;

/** Shannon entropy in bits per character. */
function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/**
 * True for a long base64 blob: mixed case, digits, at least a quarter of it
 * uppercase or digits, and high entropy. Random base64 of 40+ characters
 * passes 99.9% of the time (measured); paths, git SHAs (lowercase hex), UUIDs
 * and CamelCase names stay readable.
 */
function isSecretBlob(run: string): boolean {
  const body = run.replace(/=+$/, "");
  if (body.length < 40) return false;
  if (!/[a-z]/.test(body) || !/[A-Z]/.test(body) || !/[0-9]/.test(body)) return false;
  if ((body.match(/[A-Z0-9]/g)?.length ?? 0) < body.length / 4) return false;
  return entropy(body) >= 4.2;
}

/** Replaces the value of every embedded `secret_name=value`; one pass, linear. */
function redactEmbeddedPairs(arg: string, hit: (s: string) => string): string {
  let out = "";
  let copied = 0;
  EMBEDDED_NAME.lastIndex = 0;
  for (;;) {
    const m = EMBEDDED_NAME.exec(arg);
    if (m === null) break;
    if (!SECRET_NAME_END.test(m[1] ?? "")) continue;
    EMBEDDED_VALUE.lastIndex = EMBEDDED_NAME.lastIndex;
    if (EMBEDDED_VALUE.exec(arg) === null) continue;
    out += arg.slice(copied, EMBEDDED_NAME.lastIndex) + hit(REDACTED);
    copied = EMBEDDED_VALUE.lastIndex;
    EMBEDDED_NAME.lastIndex = copied;
  }
  return copied === 0 ? arg : out + arg.slice(copied);
}

/**
 * Replaces each URL password: from after `scheme://user:` to the LAST `@`
 * before a space, `?` or `#` (`https://u:p%40ss/word@host/` hides all of
 * `p%40ss/word`: users put unencoded `/` and `@` in passwords). A later `@` in
 * the path hides more than the password: readability, not a leak. Linear:
 * each run up to its end is searched for `@` once, however many `scheme://`
 * starts it holds.
 */
function redactUrlPasswords(arg: string, hit: (s: string) => string): string {
  let out = "";
  let copied = 0;
  let runEnd = -1;
  let lastAt = -1;
  URL_USERINFO.lastIndex = 0;
  for (;;) {
    const m = URL_USERINFO.exec(arg);
    if (m === null) break;
    const from = URL_USERINFO.lastIndex;
    if (from > runEnd) {
      AUTHORITY_END.lastIndex = from;
      runEnd = AUTHORITY_END.exec(arg)?.index ?? arg.length;
      const at = arg.slice(from, runEnd).lastIndexOf("@");
      lastAt = at < 0 ? -1 : from + at;
    }
    if (lastAt <= from) continue;
    PORT_THEN_PATH.lastIndex = from;
    if (PORT_THEN_PATH.test(arg) && PORT_THEN_PATH.lastIndex <= lastAt) continue;
    out += arg.slice(copied, from) + hit(REDACTED);
    copied = lastAt;
    URL_USERINFO.lastIndex = lastAt + 1;
  }
  return copied === 0 ? arg : out + arg.slice(copied);
}

/** Redacts the secrets inside one argument; counts replacements in `count`. */
function redactArg(arg: string, count: { n: number }): string {
  const hit = (s: string): string => {
    count.n++;
    return s;
  };
  const whole = WHOLE_PAIR.exec(arg);
  if (whole) return hit(`${whole[1]}=${REDACTED}`);
  const header = HEADER.exec(arg);
  if (header) return hit(`${header[1]}${REDACTED}`);
  let out = arg;
  out = out.replace(JSON_PAIR, (_m, name: string) => hit(`${name}"${REDACTED}"`));
  out = redactEmbeddedPairs(out, hit);
  out = redactUrlPasswords(out, hit);
  const known = redactText(out);
  if (known !== out) {
    count.n++;
    out = known.replaceAll("[REDACTED]", REDACTED);
  }
  out = out.replace(BLOB, (run) => (isSecretBlob(run) ? hit(REDACTED) : run));
  return out;
}

const encoder = new TextEncoder();

/** What {@linkcode redactArgv} knows from the arguments before the current one. */
interface ArgState {
  /**
   * What the previous argument says this one is: `secret` (a known program's
   * secret flag: always hidden, even `-Xy7!`), `userinfo` (`curl -u`: hide
   * after the first `:`), `maybe` (after a password-like flag name: hidden
   * unless it looks like the next flag, so `--skip-auth --dry-run` stays).
   */
  pending: "secret" | "userinfo" | "maybe" | undefined;
  /** The known program the argv runs (shared/argv_programs.ts). */
  program: FoundProgram | undefined;
  /** Its rule applies from here on (`docker … login`). */
  active: boolean;
}

/** Redacts argument `i` given what came before it; updates `st`. */
function redactInContext(arg: string, i: number, st: ArgState, count: { n: number }): string {
  const pending = st.pending;
  st.pending = undefined;
  if (pending === "secret" || (pending === "maybe" && !PLAIN_FLAG.test(arg))) {
    count.n++;
    return REDACTED;
  }
  if (pending === "userinfo") {
    const shown = redactUserinfo(arg, REDACTED);
    if (shown !== undefined) {
      count.n++;
      return shown;
    }
  }
  const program = st.program;
  if (program !== undefined && i > program.index) {
    if (!st.active) {
      st.active = arg === program.rule.after;
    } else {
      const got = programHit(program.rule, arg, REDACTED);
      if (got?.kind === "next") {
        st.pending = got.value;
        return arg;
      }
      if (got?.kind === "shown") {
        count.n++;
        return got.arg;
      }
    }
  }
  st.pending = SECRET_FLAG.test(arg) ? "maybe" : undefined;
  return redactArg(arg, count);
}

/** What an argument over the cap is shown as: nothing of it, only its size. */
function oversizedArg(chars: number): string {
  return `[argument of ${chars} characters not shown]`;
}

/**
 * Makes a caller-supplied argv safe to show a human: strips control and bidi
 * characters, redacts secrets (values of password-like flags, `key=value`
 * secrets, JWTs, OAuth tokens, long base64 blobs, URL passwords), and caps it
 * at 512 arguments, 2000 characters per argument and 32 KiB in total, with one
 * note per cap applied.
 *
 * The caps apply before any pattern runs: an argument over 2000 characters is
 * replaced wholesale by its size (cutting it first could leave half a secret
 * that no longer looks like one; redacting it first would run the patterns
 * over up to 64 KiB of hostile text), and arguments past 32 KiB in total are
 * not looked at. Every pattern is linear, so the work is bounded by the caps.
 */
export function redactArgv(argv: readonly string[]): RedactedArgv {
  const notes: string[] = [];
  const count = { n: 0 };
  const out: string[] = [];
  let total = 0;
  const limit = Math.min(argv.length, ARGV_CAPS.maxArgs);
  const st: ArgState = { pending: undefined, program: findProgram(argv), active: false };
  st.active = st.program !== undefined && st.program.rule.after === undefined;
  const truncatedAt = (i: number): RedactedArgv => {
    notes.push(
      `command truncated at ${ARGV_CAPS.maxTotalBytes / 1024} KiB: arguments ${
        i + 1
      } to ${argv.length} not shown`,
    );
    return { argv: out, notes, redactions: count.n };
  };
  for (let i = 0; i < limit; i++) {
    const raw = argv[i];
    // Hostile input arrives as parsed JSON: anything but a string is shown as its type only.
    let arg = typeof raw === "string" ? raw : `[${typeof raw}]`;
    // Before any pattern: the total cap on the raw size (a character is at
    // least one byte, so what with-prod's own pass let through still fits).
    const shown = arg.length > ARGV_CAPS.maxArgChars ? oversizedArg(arg.length).length : arg.length;
    if (total + shown > ARGV_CAPS.maxTotalBytes) {
      return truncatedAt(i);
    }
    if (arg.length > ARGV_CAPS.maxArgChars) {
      notes.push(
        `argument ${
          i + 1
        } not shown: ${arg.length} characters, over the ${ARGV_CAPS.maxArgChars}-character cap`,
      );
      arg = oversizedArg(arg.length);
      st.pending = undefined;
    } else {
      arg = redactInContext(stripUnsafeChars(arg), i, st, count);
    }
    // Redaction can lengthen an argument (`key=v` → `key=[REDACTED]`).
    if (arg.length > ARGV_CAPS.maxArgChars) {
      notes.push(
        `argument ${i + 1} truncated to ${ARGV_CAPS.maxArgChars} characters (was ${arg.length})`,
      );
      arg = `${arg.slice(0, ARGV_CAPS.maxArgChars - 1)}…`;
    }
    const bytes = encoder.encode(arg).length;
    if (total + bytes > ARGV_CAPS.maxTotalBytes) return truncatedAt(i);
    total += bytes;
    out.push(arg);
  }
  if (argv.length > ARGV_CAPS.maxArgs) {
    notes.push(
      `command truncated to ${ARGV_CAPS.maxArgs} arguments: ${
        argv.length - ARGV_CAPS.maxArgs
      } more not shown`,
    );
  }
  return { argv: out, notes, redactions: count.n };
}
