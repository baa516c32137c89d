/**
 * Validation of a prod request body (`POST /session`). The command, reason
 * and project end up in a dialog, a terminal and the audit log, so the gate
 * redacts and caps them itself, whatever the caller already did.
 */
import { redactArgv } from "../shared/argv_redact.ts";
import { GateError } from "../shared/errors.ts";
import {
  APPROVAL_CODE_PATTERN,
  DEFAULT_SCOPES,
  LIMITS,
  type RefusalReport,
} from "../shared/protocol.ts";
import { sanitizeMessage, stripUnsafeChars } from "../shared/redact.ts";
import { validateProject, validateScopes } from "./params.ts";

/** A prod request the gate is willing to show a human. */
export interface ParsedProdRequest {
  readonly command: readonly string[] | undefined;
  /** Caps applied to the command (shown with it). */
  readonly notes: readonly string[];
  readonly reason: string | undefined;
  readonly project: string | undefined;
  readonly scopes: readonly string[];
  readonly ttlSeconds: number;
  /** with-prod's confirmation code (format checked; the human compares it). */
  readonly code: string | undefined;
  /** "build-vm-3 via ssh": the caller's stated host (advisory, sanitised, capped). */
  readonly from?: string | undefined;
}

const FIELDS = ["command", "reason", "project", "scopes", "ttl_seconds", "code", "host", "via"];

/** Longest host name shown (a DNS name is at most 253; a label 63). */
const MAX_HOST_CHARS = 64;

/**
 * The caller's stated origin, made safe to show: host name characters only
 * (anything else becomes "?"), capped; `via` only from a fixed list. Advisory:
 * a container can claim any host name, so the human reads it as a hint.
 */
export function parseCallerOrigin(host: unknown, via: unknown): string | undefined {
  if (host === undefined && via === undefined) return undefined;
  if (host !== undefined && typeof host !== "string") {
    throw new GateError("bad_request", "host must be a string");
  }
  if (via !== undefined && via !== "ssh") {
    throw new GateError("bad_request", 'via must be "ssh" when given');
  }
  const h = (host ?? "").slice(0, 256).replace(/[^A-Za-z0-9._-]/g, "?");
  const name = h === ""
    ? "an unnamed host"
    : h.length > MAX_HOST_CHARS
    ? `${h.slice(0, MAX_HOST_CHARS)}…`
    : h;
  return via === "ssh" ? `${name} via ssh` : name;
}

/** Limits for {@linkcode parseProdRequest}. */
export interface ProdRequestLimits {
  /** Longest session a caller may get; longer asks are capped to it. */
  maxTtlSeconds: number;
  /** Project used when the request names none. */
  defaultProject: string | undefined;
}

/** Validates a `ProdRequest` JSON object. */
export function parseProdRequest(
  body: Record<string, unknown>,
  limits: ProdRequestLimits,
): ParsedProdRequest {
  for (const k of Object.keys(body)) {
    if (!FIELDS.includes(k)) {
      throw new GateError(
        "bad_request",
        `unknown field ${JSON.stringify(k.slice(0, 40))} in the request body; allowed: ${
          FIELDS.join(", ")
        }`,
      );
    }
  }
  let command: string[] | undefined;
  let notes: string[] = [];
  if (body.command !== undefined) {
    if (!Array.isArray(body.command) || body.command.some((a) => typeof a !== "string")) {
      throw new GateError("bad_request", "command must be an array of strings");
    }
    if (body.command.length === 0) {
      throw new GateError("bad_request", "command must not be empty when given");
    }
    const r = redactArgv(body.command as string[]);
    command = r.argv;
    notes = r.notes;
  }
  let reason: string | undefined;
  if (body.reason !== undefined) {
    if (typeof body.reason !== "string") {
      throw new GateError("bad_request", "reason must be a string");
    }
    if (body.reason.length > LIMITS.maxReasonChars) {
      throw new GateError(
        "bad_request",
        `reason: at most ${LIMITS.maxReasonChars} characters (got ${body.reason.length})`,
      );
    }
    reason = stripUnsafeChars(body.reason).trim() || undefined;
  }
  let project = limits.defaultProject;
  if (body.project !== undefined) {
    if (typeof body.project !== "string") {
      throw new GateError("bad_request", "project must be a string");
    }
    project = validateProject(body.project);
  }
  let scopes: string[] = [...DEFAULT_SCOPES];
  if (body.scopes !== undefined) {
    if (!Array.isArray(body.scopes) || body.scopes.some((s) => typeof s !== "string")) {
      throw new GateError("bad_request", "scopes must be an array of strings");
    }
    if (body.scopes.length > 0) scopes = validateScopes(body.scopes as string[]);
  }
  let ttlSeconds = limits.maxTtlSeconds;
  if (body.ttl_seconds !== undefined) {
    const t = body.ttl_seconds;
    if (typeof t !== "number" || !Number.isSafeInteger(t) || t < 60) {
      throw new GateError(
        "bad_request",
        `ttl_seconds must be an integer of at least 60 (longer asks are capped at ${limits.maxTtlSeconds})`,
      );
    }
    ttlSeconds = Math.min(t, limits.maxTtlSeconds);
  }
  let code: string | undefined;
  if (body.code !== undefined) {
    // Format only: the gate cannot know which code with-prod printed; the
    // human does. A strict format keeps the dialog line unambiguous.
    if (typeof body.code !== "string" || !APPROVAL_CODE_PATTERN.test(body.code)) {
      throw new GateError(
        "bad_request",
        "code must be an approval code like K7P-QX2 (3 + 3 characters of with-prod's alphabet)",
      );
    }
    code = body.code;
  }
  const from = parseCallerOrigin(body.host, body.via);
  return { command, notes, reason, project, scopes, ttlSeconds, code, from };
}

/**
 * Parses a refusal report from with-prod. It comes from the container, so
 * every field is checked and bounded before it reaches the audit log.
 */
export function parseRefusalReport(body: Record<string, unknown>): RefusalReport {
  for (const key of Object.keys(body)) {
    if (key !== "pid" && key !== "command" && key !== "reason") {
      throw new GateError(
        "bad_request",
        `unknown field ${JSON.stringify(key.slice(0, 40))}; allowed: pid, command, reason`,
      );
    }
  }
  const { pid, command, reason } = body;
  if (
    pid !== null &&
    !(Number.isSafeInteger(pid) && (pid as number) >= 1 && (pid as number) <= 4194304)
  ) {
    throw new GateError("bad_request", "pid must be a process id (1 to 4194304) or null");
  }
  if (command !== null && (typeof command !== "string" || command.length > 64)) {
    throw new GateError("bad_request", "command must be a string of at most 64 characters or null");
  }
  if (typeof reason !== "string" || reason.length > 200) {
    throw new GateError("bad_request", "reason must be a string of at most 200 characters");
  }
  return {
    pid: pid as number | null,
    command: command === null ? null : sanitizeMessage(command as string, 64),
    reason: sanitizeMessage(reason, 200),
  };
}
