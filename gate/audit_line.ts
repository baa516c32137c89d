/**
 * What one audit line may hold. The container chooses most of what a prod
 * request's line contains (its command above all), and rejected requests
 * cost it nothing, so every line is bounded and repeated rejections are
 * counted instead of written: the container must not be able to fill the
 * host's disk or rotate real decisions out of the log.
 */
import { createHash } from "node:crypto";
import type { AuditEntry } from "./audit.ts";

/** The command kept in a line: what the approval dialog shows at most. */
export const AUDIT_COMMAND_CAPS: Readonly<{ maxArgs: number; maxArgChars: number }> = Object
  .freeze({ maxArgs: 40, maxArgChars: 240 });

/** Full lines per kind of rejection and summary period; the rest are counted. */
export const FOLD_AFTER = 5;

/**
 * Results that a caller can repeat at no cost: folded past {@linkcode FOLD_AFTER}.
 * Never `denied`: a human's Deny (of a look-alike request, say) is what an
 * investigator needs, and a container can cause at most
 * `max_approvals_per_minute` of them.
 */
const FOLDABLE: ReadonlySet<string> = new Set(["rate_limited", "withdrawn", "error"]);

/** Command fields of a bounded line: the capped command and, when cut, what was cut. */
export interface BoundedCommand {
  command: string[];
  /** Set only when the command was cut: its argument count, characters and hash. */
  command_args?: number;
  command_chars?: number;
  /** SHA-256 (hex) of the whole (redacted) command as JSON: the same command, the same hash. */
  command_sha256?: string;
}

/** Size and hash of a whole (redacted) command. */
function digest(command: readonly string[]): Required<Omit<BoundedCommand, "command">> {
  return {
    command_args: command.length,
    command_chars: command.reduce((n, a) => n + a.length, 0),
    command_sha256: createHash("sha256").update(JSON.stringify(command)).digest("hex"),
  };
}

/**
 * Caps a (redacted) command for the audit log at 40 arguments of 240
 * characters; when it cuts, it keeps the full size and a hash, so lines
 * about the same command can still be matched.
 */
export function boundCommand(command: readonly string[]): BoundedCommand {
  const { maxArgs, maxArgChars } = AUDIT_COMMAND_CAPS;
  const cut = command.length > maxArgs || command.some((a) => a.length > maxArgChars);
  const shown = command.slice(0, maxArgs).map((a) =>
    a.length > maxArgChars ? `${a.slice(0, maxArgChars - 1)}…` : a
  );
  return cut ? { command: shown, ...digest(command) } : { command: shown };
}

/**
 * Only the size and hash of a command, for decision lines the container can
 * cause without a human (a denial: ask, then hang up) in the decisions file,
 * so they stay small there; the main log has the command itself.
 */
export function commandDigest(command: readonly string[]): Omit<BoundedCommand, "command"> {
  return digest(command);
}

/** A prod decision: goes to the decisions file too, whatever junk fills the main log. */
export function isProdDecision(entry: Readonly<Record<string, unknown>>): boolean {
  return entry.level === "prod" && entry.cache_hits === undefined &&
    (entry.result === "granted" || entry.result === "denied" || entry.result === "revoked");
}

/** The key repeated rejections are counted under; undefined for lines never folded. */
export function foldKey(entry: AuditEntry): string | undefined {
  if (!FOLDABLE.has(entry.result)) return undefined;
  return [entry.level, entry.endpoint, entry.result, entry.code ?? ""].join(" ");
}
