/**
 * The output contract both `doctor` commands share: each check ends PASS,
 * WARN or FAIL with one line and, for WARN/FAIL, the exact command that fixes
 * it. Exit code 0 when everything passed, 1 on any FAIL, 3 when only WARNs.
 * Messages never carry a token: checks report kinds and lifetimes only.
 */
import { sanitizeMessage } from "./redact.ts";

export type CheckStatus = "PASS" | "WARN" | "FAIL";

/** One finished check. */
export interface CheckResult {
  /** Stable machine name, e.g. `adc-refresh`. */
  readonly id: string;
  readonly status: CheckStatus;
  /** One line: what was found. */
  readonly message: string;
  /** WARN/FAIL: the command (or edit) that fixes it. */
  readonly fix?: string;
  /** The gate profile the check is about (`gcp-gate doctor` with `[profiles.*]`). */
  readonly profile?: string;
}

/** A check to run: returns one result (or several, e.g. one per credential found). */
export type Check = () => Promise<CheckResult | readonly CheckResult[]>;

/** Documented exit codes of `doctor`. */
export const DOCTOR_EXIT: Readonly<{ PASS: 0; FAIL: 1; WARN: 3 }> = Object.freeze({
  PASS: 0,
  FAIL: 1,
  WARN: 3,
});

/**
 * `s` as one shell word: unchanged when plain, else single-quoted. Fixes are
 * copied into a shell, and file names come from places a container controls:
 * `a.json; curl … | sh` must stay one harmless argument.
 */
export function shellArg(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'"'"'`)}'`;
}

/** Shorthands that keep check code readable. */
export function pass(id: string, message: string): CheckResult {
  return { id, status: "PASS", message };
}
export function warn(id: string, message: string, fix: string): CheckResult {
  return { id, status: "WARN", message, fix };
}
export function fail(id: string, message: string, fix: string): CheckResult {
  return { id, status: "FAIL", message, fix };
}

/**
 * Runs `checks` one after another (their order is the report's order; some
 * depend on the network, so they are not raced against each other). A check
 * that throws is a FAIL with the error's first line, never a stack trace.
 */
export async function runChecks(
  checks: readonly { id: string; run: Check }[],
): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const c of checks) {
    try {
      const r = await c.run();
      out.push(...(Array.isArray(r) ? r : [r as CheckResult]));
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      out.push(
        fail(c.id, `check failed: ${msg.split("\n")[0]}`, "report this with the output of --json"),
      );
    }
  }
  return out.map((r) => ({
    ...r,
    // Checks quote file names and Google's error text: keep every field one printable line.
    message: sanitizeMessage(r.message, 600),
    // A fix is a command: never cut it short (a cut path is another path); checks bound its length.
    ...(r.fix === undefined ? {} : { fix: sanitizeMessage(r.fix, 8000) }),
  }));
}

/** 0 all PASS, 1 any FAIL, 3 only WARNs. */
export function doctorExitCode(results: readonly CheckResult[]): number {
  if (results.some((r) => r.status === "FAIL")) return DOCTOR_EXIT.FAIL;
  if (results.some((r) => r.status === "WARN")) return DOCTOR_EXIT.WARN;
  return DOCTOR_EXIT.PASS;
}

/** The human report: one line per check, its fix indented below, a summary last. */
export function renderText(results: readonly CheckResult[]): string {
  const width = Math.max(0, ...results.map((r) => r.id.length));
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${r.status}  ${r.id.padEnd(width)}  ${r.message}`);
    if (r.fix) lines.push(`      ${"".padEnd(width)}  fix: ${r.fix}`);
  }
  const n = (s: CheckStatus): number => results.filter((r) => r.status === s).length;
  lines.push("", `${n("PASS")} passed, ${n("WARN")} warnings, ${n("FAIL")} failed`);
  return lines.join("\n");
}

/** The machine report (`--json`): stable keys, one object. */
export function renderJson(
  program: string,
  version: string,
  results: readonly CheckResult[],
): string {
  return JSON.stringify({
    program,
    version,
    exit_code: doctorExitCode(results),
    checks: results,
  });
}
