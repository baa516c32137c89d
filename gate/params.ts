/**
 * Parsing what a container sends: query parameters and JSON bodies. Every
 * check names the parameter and what is allowed, and every size is bounded.
 */
import { GateError } from "../shared/errors.ts";
import { DEFAULT_SCOPES, LIMITS } from "../shared/protocol.ts";
import type { GateRequest } from "./server.ts";

const SCOPE_RE = /^[A-Za-z0-9._:/\-]{1,200}$/;
/** Project ids, including legacy domain-scoped ones (`example.com:proj`). */
const PROJECT_RE = /^[a-z][a-z0-9.:\-]{1,99}$/;
export const MAX_SCOPES = 50;

/** Validates a list of OAuth scopes (deduplicated, order kept). */
export function validateScopes(scopes: readonly string[], name = "scopes"): string[] {
  if (scopes.length > MAX_SCOPES) {
    throw new GateError("bad_request", `${name}: at most ${MAX_SCOPES} scopes are allowed`);
  }
  for (const s of scopes) {
    if (!SCOPE_RE.test(s)) {
      throw new GateError(
        "bad_request",
        `${name}: ${
          JSON.stringify(s.slice(0, 60))
        } is not a valid OAuth scope (letters, digits and ._:/- only, up to 200 characters)`,
      );
    }
  }
  return [...new Set(scopes)];
}

/** Parses `?scopes=a,b` (also space-separated); defaults to cloud-platform. */
export function parseScopes(raw: string | null): string[] {
  if (raw === null || raw.trim() === "") return [...DEFAULT_SCOPES];
  return validateScopes(raw.split(/[,\s]+/).filter((s) => s !== ""));
}

/** Parses an integer parameter within [min, max]. */
export function parseIntParam(
  name: string,
  raw: string | null,
  range: { min: number; max: number },
  fallback: number,
): number {
  if (raw === null || raw === "") return fallback;
  if (!/^\d{1,9}$/.test(raw) || Number(raw) < range.min || Number(raw) > range.max) {
    throw new GateError(
      "bad_request",
      `${name} must be an integer from ${range.min} to ${range.max}, got ${
        JSON.stringify(raw.slice(0, 20))
      }`,
    );
  }
  return Number(raw);
}

/** Validates a project id. */
export function validateProject(raw: string, name = "project"): string {
  if (!PROJECT_RE.test(raw)) {
    throw new GateError(
      "bad_request",
      `${name}: ${
        JSON.stringify(raw.slice(0, 40))
      } is not a project id (lowercase letters, digits, hyphens; up to 100 characters)`,
    );
  }
  return raw;
}

/** Refuses unknown and repeated query parameters. */
export function allowOnly(params: URLSearchParams, allowed: readonly string[]): void {
  const seen = new Set<string>();
  for (const k of params.keys()) {
    if (!allowed.includes(k)) {
      throw new GateError(
        "bad_request",
        `unknown query parameter ${JSON.stringify(k.slice(0, 40))}; allowed: ${
          allowed.join(", ") || "none"
        }`,
      );
    }
    if (seen.has(k)) throw new GateError("bad_request", `query parameter ${k} given twice`);
    seen.add(k);
  }
}

/**
 * Reads a JSON object body of at most `maxBytes`, refusing invalid UTF-8,
 * non-JSON and non-objects. Stops reading as soon as the limit is passed.
 */
export async function readJsonBody(
  req: GateRequest,
  maxBytes: number = LIMITS.maxBodyBytes,
): Promise<Record<string, unknown>> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) {
    throw new GateError("too_large", `request body larger than ${maxBytes} bytes`);
  }
  const type = req.headers.get("content-type");
  if (type !== null && !/^application\/json\b/i.test(type)) {
    throw new GateError(
      "bad_request",
      `content-type must be application/json, got ${JSON.stringify(type.slice(0, 60))}`,
      { status: 415 },
    );
  }
  if (req.body instanceof Uint8Array) {
    if (req.body.length > maxBytes) {
      throw new GateError("too_large", `request body larger than ${maxBytes} bytes`);
    }
    return parseJsonObject(req.body);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (req.body) {
    const reader = req.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw new GateError("too_large", `request body larger than ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.length;
  }
  return parseJsonObject(bytes);
}

/** A UTF-8 JSON object, or the error saying what it is not. */
function parseJsonObject(bytes: Uint8Array): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new GateError("bad_request", "request body is not valid UTF-8");
  }
  if (text.trim() === "") return {};
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new GateError("bad_request", "request body is not valid JSON");
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new GateError("bad_request", "request body must be a JSON object");
  }
  return json as Record<string, unknown>;
}
