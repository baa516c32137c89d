/** Small HTTP helpers shared by the gate and the metadata servers. */
import { GateError } from "./errors.ts";
import type { ErrorBody } from "./protocol.ts";
import { sanitizeMessage } from "./redact.ts";

/** A JSON response with `status`. */
export function jsonResponse(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  const h = new Headers(headers);
  h.set("content-type", "application/json");
  h.set("cache-control", "no-store");
  return new Response(JSON.stringify(body), { status, headers: h });
}

/**
 * Turns any error into `{error, code}`. Messages are sanitised and capped:
 * they may carry text from Google or from a peer.
 */
export function errorResponse(err: unknown, headers: HeadersInit = {}): Response {
  const e = err instanceof GateError
    ? err
    : new GateError("internal", "internal error; see the gate's log");
  const body: ErrorBody = { error: sanitizeMessage(e.message), code: e.code };
  const h = new Headers(headers);
  if (e.retryAfterSeconds !== undefined) {
    h.set("retry-after", String(Math.ceil(e.retryAfterSeconds)));
  }
  return jsonResponse(body, e.status, h);
}

/** Compares two secrets in time independent of where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const ea = new TextEncoder().encode(a);
  const eb = new TextEncoder().encode(b);
  let diff = ea.length ^ eb.length;
  const n = Math.max(ea.length, eb.length);
  for (let i = 0; i < n; i++) {
    diff |= (ea[i % (ea.length || 1)] ?? 0) ^ (eb[i % (eb.length || 1)] ?? 0);
  }
  return diff === 0;
}
