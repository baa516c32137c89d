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
   * Most command lines to show (a dialog cannot scroll, and on a terminal a
   * long command would scroll the project, scopes and code out of sight);
   * the rest is summarised in one line that says so.
   */
  maxCommandLines?: number;
  /** Longest line shown; longer ones are cut and say how much was cut. */
  maxLineChars?: number;
}

/** Command lines the terminal prompt and `gcp-gate pending` show (as the dialog). */
export const COMMAND_LINES_SHOWN = 40;
/** Longest line the terminal prompt and `gcp-gate pending` print. */
export const LINE_CHARS_SHOWN = 240;

const SCOPE_PREFIX = "https://www.googleapis.com/auth/";

/** "8 h", "1 h 30 min", "45 min", "30 s". */
export function formatDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.round(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h > 0) return m > 0 ? `${h} h ${m} min` : `${h} h`;
  if (m > 0) return s % 60 > 0 ? `${m} min ${s % 60} s` : `${m} min`;
  return `${s} s`;
}

/**
 * What an approval really hands on, stated where the human decides: the
 * command line is advisory, so whatever the approved process tree runs gets
 * the access, and a container with this display could answer for you.
 */
export const BOUNDARY_NOTES: readonly string[] = [
  "Know before you allow:",
  "  - everything this command starts gets this access: scripts the agent can edit, and relays",
  "    (kubectl proxy/port-forward, cloud-sql-proxy, IAP tunnels) hand it on to anyone they serve;",
  "  - the project is the caller's default, not a boundary: tokens work wherever the account can;",
  "  - if a container can use this display it can click Allow itself: never share your X/Wayland.",
];

/** A one-line title for the request (with the code: the first thing to compare). */
export function requestTitle(req: ApprovalRequest): string {
  const code = req.code === undefined ? "no code" : `code ${stripUnsafeChars(req.code)}`;
  const profile = req.profile === undefined ? "" : ` [profile ${stripUnsafeChars(req.profile)}]`;
  return `gcp-gate${profile}: allow PRODUCTION access for ${
    stripUnsafeChars(req.project ?? "(no project)")
  }? (${code})`;
}

/** "10 min", or the asked lifetime when the caller did not say (older callers). */
function tokenLife(req: ApprovalRequest): string {
  const t = req.tokenTtlSeconds ?? req.ttlSeconds;
  return formatDuration(req.kind === "token" ? req.ttlSeconds : Math.min(t, req.ttlSeconds));
}

/** The line that says whose credentials an approval hands out. */
export function grantsLine(req: ApprovalRequest): string {
  const clean = (x: string): string => stripUnsafeChars(x);
  if (req.grants !== undefined) return `Grants:    ${clean(req.grants)}`;
  return req.serviceAccount === undefined
    ? `Grants:    YOUR OWN credentials (${
      clean(req.email)
    }) — all your permissions, ~1 h, not revocable early; set prod_service_account to grant a limited account instead`
    : `Grants:    tokens of ${
      clean(req.serviceAccount)
    } (prod_service_account), limited to the scopes below, each valid ${tokenLife(req)}${
      req.kind === "session" ? ", renewed only while the session lasts" : ""
    }`;
}

/** The code line: the one thing a look-alike request from another process cannot copy. */
export function codeLine(req: ApprovalRequest): string {
  return req.code === undefined
    ? "Code:      none (not from with-prod)"
    : `Code:      ${stripUnsafeChars(req.code)} — must match what with-prod printed`;
}

/**
 * Project, scopes, lifetime, code and id in one line, for the final question:
 * whatever scrolled by above it, the human answers about these.
 */
export function requestSummary(req: ApprovalRequest): string {
  const clean = (x: string): string => stripUnsafeChars(x);
  const scopes =
    req.scopes.map((x) => clean(x.startsWith(SCOPE_PREFIX) ? x.slice(SCOPE_PREFIX.length) : x))
      .join(",") || "none";
  const grant = req.grants !== undefined
    ? `PAM grant, ${formatDuration(req.ttlSeconds)} session`
    : req.serviceAccount === undefined
    ? "YOUR OWN credentials (all your permissions)"
    : `scopes ${scopes}, ${formatDuration(req.ttlSeconds)}`;
  const profile = req.profile === undefined ? "" : `profile ${clean(req.profile)}, `;
  const line = `${profile}project ${clean(req.project ?? "(not given)")}, ${grant}, code ${
    req.code === undefined ? "none" : clean(req.code)
  }, request ${clean(req.id)}`;
  return cut(line, LINE_CHARS_SHOWN);
}

function cut(line: string, max: number): string {
  return line.length > max ? `${line.slice(0, max)}… (${line.length - max} more characters)` : line;
}

/**
 * The request as lines of plain text: the code, who, what is really granted,
 * project, scopes, lifetime, reason, the numbered command (redacted again
 * here: the gate never trusts that the caller did it) and every cap that was
 * applied.
 */
export function describeRequest(req: ApprovalRequest, options: DescribeOptions = {}): string[] {
  const clean = (s: string): string => stripUnsafeChars(s);
  const what = req.kind === "session" ? "prod session" : "prod token";
  const own = req.serviceAccount === undefined;
  const scopes = req.scopes.map(clean).join(", ") || "(none)";
  const lifetime = `${formatDuration(req.ttlSeconds)} (${req.ttlSeconds} s)`;
  const lines = [
    `A process in a container asks for PRODUCTION access (${what}).`,
    "",
    codeLine(req),
    ...(req.profile === undefined
      ? []
      : [`Profile:   ${clean(req.profile)} (the socket it came from)`]),
    `Who:       ${clean(req.email)}`,
    ...(req.from === undefined
      ? []
      : [`From:      ${clean(req.from)} (as stated by the caller; advisory)`]),
    grantsLine(req),
    `Project:   ${clean(req.project ?? "(not given)")}`,
    // Your own token carries every permission you have, for Google's ~1 h:
    // showing the asked scopes and lifetime as if they applied would mislead.
    own
      ? `Scopes:    ${scopes} (asked; NOT applied to your own credentials)`
      : `Scopes:    ${scopes}`,
    own && req.grants !== undefined
      ? `Lifetime:  ${lifetime} (the session; the grant's roles are withdrawn when it ends)`
      : own
      ? `Lifetime:  ${lifetime} (the session; each token of yours lives ~1 h, revoking cannot shorten it)`
      : `Lifetime:  ${lifetime}`,
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
    for (const n of notes.slice(0, options.maxCommandLines ?? Infinity)) lines.push(`  - ${n}`);
  }
  lines.push(...BOUNDARY_NOTES);
  lines.push(`Request:   ${clean(req.id)}`);
  const maxChars = options.maxLineChars;
  return maxChars === undefined ? lines : lines.map((l) => cut(l, maxChars));
}
