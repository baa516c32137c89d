/**
 * The facts every approval method shows, in one place so the dialog, the
 * terminal prompt and `gcp-gate pending` can never disagree about what is
 * being approved.
 */
import { redactArgv } from "../../shared/argv_redact.ts";
import { stripUnsafeChars } from "../../shared/redact.ts";
import type { ApprovalRequest } from "./types.ts";

/** Options for {@linkcode describeRequest}. */
export interface DescribeOptions {
  /**
   * Most command lines to show (a dialog cannot scroll); the rest is
   * summarised in one line that says so.
   */
  maxCommandLines?: number;
}

/** "8 h", "1 h 30 min", "45 min", "30 s". */
export function formatDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.round(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h > 0) return m > 0 ? `${h} h ${m} min` : `${h} h`;
  if (m > 0) return s % 60 > 0 ? `${m} min ${s % 60} s` : `${m} min`;
  return `${s} s`;
}

/** A one-line title for the request. */
export function requestTitle(req: ApprovalRequest): string {
  return `gcp-gate: allow PRODUCTION access for ${
    stripUnsafeChars(req.project ?? "(no project)")
  }?`;
}

/**
 * The request as lines of plain text: who, project, scopes, lifetime,
 * reason, the numbered command (redacted again here: the gate never trusts
 * that the caller did it) and every cap that was applied.
 */
export function describeRequest(req: ApprovalRequest, options: DescribeOptions = {}): string[] {
  const clean = (s: string): string => stripUnsafeChars(s);
  const what = req.kind === "session" ? "prod session" : "prod token";
  const lines = [
    `A process in a container asks for PRODUCTION access (${what}).`,
    "",
    `Who:       ${clean(req.email)}`,
    `Project:   ${clean(req.project ?? "(not given)")}`,
    `Scopes:    ${req.scopes.map(clean).join(", ") || "(none)"}`,
    `Lifetime:  ${formatDuration(req.ttlSeconds)} (${req.ttlSeconds} s)`,
    `Reason:    ${
      req.reason === undefined || req.reason === "" ? "(none given)" : clean(req.reason)
    }`,
  ];
  const notes = [...req.notes.map(clean)];
  if (req.command === undefined || req.command.length === 0) {
    lines.push("Command:   (none given)");
  } else {
    const { argv, notes: more } = redactArgv(req.command);
    notes.push(...more);
    lines.push("Command (as stated by the caller; advisory, the gate cannot verify it):");
    const max = options.maxCommandLines ?? Infinity;
    const width = String(argv.length).length;
    argv.slice(0, max).forEach((arg, i) => {
      lines.push(`  ${String(i + 1).padStart(width)}  ${arg}`);
    });
    if (argv.length > max) {
      lines.push(
        `  … ${argv.length - max} more arguments not shown here; deny if you need to see them`,
      );
    }
  }
  if (notes.length > 0) {
    lines.push("Caps applied (512 arguments, 2000 characters each, 32 KiB in total):");
    for (const n of notes) lines.push(`  - ${n}`);
  }
  lines.push(`Request:   ${clean(req.id)}`);
  return lines;
}
