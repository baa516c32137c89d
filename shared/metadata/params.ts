/**
 * Query parameters of metadata requests, parsed the way real clients send
 * them (not always the way a URL parser would read them).
 */
import { DEFAULT_SCOPES } from "../protocol.ts";
import { GateError } from "../errors.ts";

const SCOPE_RE = /^[A-Za-z0-9._:/\-]{1,200}$/;
const MAX_SCOPES = 50;

/** `?scopes=a,b` (commas or spaces); cloud-platform when absent or empty. */
export function parseScopesParam(raw: string | null): string[] {
  if (raw === null || raw.trim() === "") return [...DEFAULT_SCOPES];
  const scopes = [...new Set(raw.split(/[,\s]+/).filter((s) => s !== ""))];
  if (scopes.length > MAX_SCOPES) {
    throw new GateError("bad_request", `scopes: at most ${MAX_SCOPES} scopes are allowed`);
  }
  for (const s of scopes) {
    if (!SCOPE_RE.test(s)) {
      throw new GateError(
        "bad_request",
        `scopes: ${JSON.stringify(s.slice(0, 60))} is not a valid OAuth scope`,
      );
    }
  }
  return scopes;
}

/** Parameters that end an unencoded audience (everything else is part of it). */
const AFTER_AUDIENCE = /&(?:format|licenses|license|alt)=/;

function decodeLeniently(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    // A bare `%` in an unencoded URL: keep the text as sent.
    return s;
  }
}

/** The `identity` endpoint's parameters. */
export interface IdentityParams {
  audience: string;
  format: "standard" | "full";
  licenses: boolean;
}

const MAX_AUDIENCE = 1000;

/**
 * Parses `identity?audience=…&format=…&licenses=…` from the raw query string.
 * gcloud sends the audience unencoded, so it may itself contain `?`, `=` and
 * `&`: it runs up to the next `&format=`, `&licenses=`, `&license=` or
 * `&alt=`. Throws `bad_request` without an audience.
 */
export function parseIdentityParams(search: string): IdentityParams {
  const q = search.startsWith("?") ? search.slice(1) : search;
  const at = q.startsWith("audience=") ? 0 : q.indexOf("&audience=") + 1;
  let audience = "";
  let rest = q;
  if (at > 0 || q.startsWith("audience=")) {
    const start = at + "audience=".length;
    const tail = q.slice(start);
    const end = tail.search(AFTER_AUDIENCE);
    const rawAudience = end === -1 ? tail : tail.slice(0, end);
    audience = decodeLeniently(rawAudience);
    rest = q.slice(0, at) + (end === -1 ? "" : tail.slice(end + 1));
  }
  if (audience === "") {
    throw new GateError(
      "bad_request",
      "identity: the audience parameter is required, e.g. ?audience=https://example.com",
    );
  }
  if (audience.length > MAX_AUDIENCE) {
    throw new GateError("bad_request", `identity: audience longer than ${MAX_AUDIENCE} characters`);
  }
  const params = new URLSearchParams(rest);
  const format = (params.get("format") ?? "standard").toLowerCase();
  if (format !== "standard" && format !== "full") {
    throw new GateError(
      "bad_request",
      `identity: format must be standard or full, got ${JSON.stringify(format.slice(0, 20))}`,
    );
  }
  // Java sends `license=` (singular); GCE takes TRUE/FALSE in any case.
  const lic = (params.get("licenses") ?? params.get("license") ?? "false").toLowerCase();
  return { audience, format, licenses: lic === "true" };
}

/** `?recursive=true` (GCE accepts any case). */
export function isRecursive(params: URLSearchParams): boolean {
  return (params.get("recursive") ?? "").toLowerCase() === "true";
}

/** Wait parameters of `?wait_for_change=true&last_etag=…&timeout_sec=…`. */
export interface WaitParams {
  lastEtag: string | undefined;
  /** Seconds to wait at most (already bounded). */
  timeoutSec: number;
}

/** Parses wait-for-change parameters; undefined when the request does not wait. */
export function parseWaitParams(params: URLSearchParams, maxSec: number): WaitParams | undefined {
  if ((params.get("wait_for_change") ?? "").toLowerCase() !== "true") return undefined;
  const raw = params.get("timeout_sec");
  let timeoutSec = maxSec;
  if (raw !== null && raw !== "") {
    if (!/^\d{1,6}$/.test(raw)) {
      throw new GateError("bad_request", "timeout_sec must be a whole number of seconds");
    }
    timeoutSec = Math.min(Number(raw), maxSec);
  }
  const lastEtag = params.get("last_etag") ?? undefined;
  return { lastEtag: lastEtag === "" || lastEtag === "0" ? undefined : lastEtag, timeoutSec };
}
