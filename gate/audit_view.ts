/**
 * `gcp-gate audit`'s reading of the log: filters, one line per event, prod
 * decisions marked, runs of summary lines (counted cache hits, folded
 * rejections) folded into one. Pure functions; the command does the I/O.
 */
import { GateError } from "../shared/errors.ts";
import { stripUnsafeChars } from "../shared/redact.ts";

/** One audit line, parsed (unknown fields kept). */
export type AuditRecord = Readonly<Record<string, unknown>>;

/** Filters from the command line. */
export interface AuditFilter {
  /** Only lines at or after this time (ms since the epoch). */
  readonly sinceMs?: number | undefined;
  /** Only these results. */
  readonly results?: readonly string[] | undefined;
  /** Only lines whose session starts with this. */
  readonly session?: string | undefined;
}

const RESULTS = [
  "granted",
  "denied",
  "withdrawn",
  "error",
  "rate_limited",
  "revoked",
  "refused",
  "waiting",
  "ended",
];
const UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Parses `--since`: `90s`, `15m`, `1h`, `7d`, or an ISO date/time. */
export function parseSince(text: string, nowMs: number): number {
  const m = /^(\d{1,7})([smhd])$/.exec(text.trim());
  if (m) return nowMs - Number(m[1]) * UNITS[m[2]!]! * 1000;
  const t = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(t)) {
    throw new GateError(
      "usage",
      `--since ${
        JSON.stringify(text.slice(0, 40))
      }: give a duration (90s, 15m, 1h, 7d) or a date (2030-01-31 or 2030-01-31T08:00:00Z)`,
    );
  }
  return t;
}

/** Parses `--result`: a comma-separated list of audit results. */
export function parseResults(text: string): string[] {
  const items = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const bad = items.find((i) => !RESULTS.includes(i));
  if (bad !== undefined || items.length === 0) {
    throw new GateError(
      "usage",
      `--result ${JSON.stringify(text.slice(0, 40))}: use one or more of ${RESULTS.join(", ")}`,
    );
  }
  return items;
}

/** True when `r` passes `f`. */
export function matches(r: AuditRecord, f: AuditFilter): boolean {
  if (f.sinceMs !== undefined) {
    const t = typeof r.time === "string" ? Date.parse(r.time) : NaN;
    if (!(t >= f.sinceMs)) return false;
  }
  if (f.results && !f.results.includes(String(r.result))) return false;
  if (f.session !== undefined) {
    if (typeof r.session !== "string" || !r.session.startsWith(f.session)) return false;
  }
  return true;
}

/** A prod decision: what the viewer marks. */
export function isDecision(r: AuditRecord): boolean {
  return r.level === "prod" && r.cache_hits === undefined && r.repeats === undefined &&
    (r.result === "granted" || r.result === "denied" || r.result === "revoked");
}

function isSummary(r: AuditRecord): boolean {
  return typeof r.cache_hits === "number" || typeof r.repeats === "number";
}

/** Text from the log, made safe for a terminal (the log holds container input). */
function clean(v: unknown, max = 200): string {
  const s = stripUnsafeChars(typeof v === "string" ? v : JSON.stringify(v) ?? "");
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function stamp(r: AuditRecord): string {
  const t = typeof r.time === "string" ? r.time : "";
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/.test(t)
    ? `${t.slice(0, 10)} ${t.slice(11, 19)}Z`
    : clean(t, 24).padEnd(20);
}

const COLORS: Readonly<Record<string, string>> = {
  granted: "\x1b[1;33m",
  denied: "\x1b[1;31m",
  revoked: "\x1b[1;36m",
};

/** One event as one line. `color`: mark prod decisions with ANSI colours too. */
export function formatRecord(r: AuditRecord, color = false): string {
  if (typeof r.audit_dropped === "number") {
    return `${stamp(r)}  audit   ${r.audit_dropped} line(s) dropped: the write queue was full`;
  }
  const decision = isDecision(r);
  const level = decision ? "▶ PROD" : `  ${clean(r.level, 4).padEnd(4)}`;
  const parts = [
    `${stamp(r)}  ${level}  ${clean(r.result, 12).padEnd(12)} ${clean(r.endpoint, 20).padEnd(16)}`,
  ];
  const add = (label: string, v: unknown): void => {
    if (v !== undefined && v !== null && v !== "") parts.push(`${label}${clean(v)}`);
  };
  add("", r.email);
  add("project ", r.project);
  add("session ", r.session);
  if (Array.isArray(r.scopes) && r.scopes.length > 0) {
    add(
      "scopes ",
      r.scopes.map((s) => String(s).replace(/^https:\/\/www\.googleapis\.com\/auth\//, "")).join(
        ",",
      ),
    );
  }
  if (typeof r.ttl_seconds === "number") parts.push(`ttl ${r.ttl_seconds}s`);
  add("code ", r.approval_code);
  add("", r.approval);
  add("reason: ", r.reason);
  add("audience ", r.audience);
  add("caller ", r.caller_command);
  add("", r.refusal);
  add("error: ", r.error);
  if (Array.isArray(r.command)) add("$ ", r.command.map((a) => String(a)).join(" "));
  if (typeof r.command_args === "number") {
    parts.push(`(command: ${r.command_args} args, ${r.command_chars} chars)`);
  }
  const line = parts.join("  ");
  return decision && color ? `${COLORS[String(r.result)] ?? ""}${line}\x1b[0m` : line;
}

/** One line for a run of summary lines: counts per kind, over the run's span. */
function formatSummaries(run: readonly AuditRecord[]): string {
  const counts = new Map<string, number>();
  for (const r of run) {
    const cached = typeof r.cache_hits === "number";
    // e.g. "/token (dev) cached", "/session (prod) rate_limited".
    const key = `${clean(r.endpoint, 20)} (${clean(r.level, 4)}) ${
      cached ? "cached" : clean(r.result, 12)
    }`;
    counts.set(key, (counts.get(key) ?? 0) + Number(cached ? r.cache_hits : r.repeats));
  }
  const first = run[0]!;
  const last = run.at(-1)!;
  const span = Math.max(
    0,
    Math.round(
      (Date.parse(String(last.time)) - Date.parse(String(first.time))) / 1000 +
        Number(first.period_seconds ?? 0),
    ),
  );
  const what = [...counts].map(([k, n]) => `${k} ×${n}`).join(", ");
  return `${stamp(last)}    ··  summary      ${what}  (counted over ${span}s)`;
}

/**
 * Formats records for reading: one line each, consecutive summary lines
 * folded into one.
 */
export function formatRecords(records: readonly AuditRecord[], color = false): string[] {
  const out: string[] = [];
  let run: AuditRecord[] = [];
  const flush = (): void => {
    if (run.length > 0) out.push(formatSummaries(run));
    run = [];
  };
  for (const r of records) {
    if (isSummary(r)) {
      run.push(r);
      continue;
    }
    flush();
    out.push(formatRecord(r, color));
  }
  flush();
  return out;
}
