/**
 * Responses shaped like a real GCE metadata server's: every one (errors and
 * redirects included) carries `Metadata-Flavor: Google` and the GCE `Server`
 * header — Node's gcp-metadata rejects any 2xx without the flavor header, and
 * Python decodes JSON only when the content type says so.
 */
import { answerBytes, attachWire } from "../http1/wire.ts";

const FLAVOR_HEADERS = {
  "metadata-flavor": "Google",
  server: "Metadata Server for VM",
  "x-xss-protection": "0",
  "x-frame-options": "SAMEORIGIN",
} as const;

/** FNV-1a over the body, twice with different seeds: a cheap, stable ETag. */
export function etagOf(body: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  return (a >>> 0).toString(16).padStart(8, "0") + (b >>> 0).toString(16).padStart(8, "0");
}

/** A body and its type, before it becomes a Response. */
export interface Payload {
  readonly status: number;
  readonly body: string;
  readonly type: "text" | "json";
  /** Precomputed for 200s (hot payloads are reused). */
  readonly etag?: string;
}

/** A plain-text payload (`application/text`, as GCE sends). */
export function textPayload(body: string, status = 200): Payload {
  return { status, body, type: "text" };
}

/** A JSON payload; 200s carry their ETag. */
export function jsonPayload(value: unknown, status = 200): Payload {
  const body = JSON.stringify(value);
  return status === 200
    ? { status, body, type: "json", etag: etagOf(body) }
    : { status, body, type: "json" };
}

const TEXT_TYPE = "application/text";
const JSON_TYPE = "application/json";

// Reused payloads (the hot token answer) keep a template Response that is
// cloned per request: a clone copies the already-validated header list and
// the static body, while `new Response(body, { headers })` re-validates every
// header each time (measured ~20x the JS cost of a clone). The template itself
// is never handed out, so its body is never consumed.
const templates = new WeakMap<Payload, { response: Response; wire: Uint8Array }>();
/** A plain-text error answer with the metadata server's headers, then close. */
export function errorBytes(status: number, message: string): Uint8Array {
  return answerBytes(
    status,
    Object.entries({ ...FLAVOR_HEADERS, "content-type": TEXT_TYPE }),
    `${message}\n`,
    true,
  );
}

/** Turns `p` into a Response; 200s get an ETag; HEAD gets the headers only. */
export function toResponse(p: Payload, head: boolean, etag?: string): Response {
  if (etag === undefined && p.etag !== undefined && !head) {
    let template = templates.get(p);
    if (!template) {
      const headers = buildHeaders(p, p.etag);
      template = {
        response: new Response(p.body, { status: p.status, headers }),
        wire: answerBytes(p.status, Object.entries(headers), p.body, false),
      };
      templates.set(p, template);
    }
    // The clone maps to its template's bytes: our connection loop writes them as they are.
    return attachWire(template.response.clone(), template.wire);
  }
  return new Response(head ? null : p.body, { status: p.status, headers: buildHeaders(p, etag) });
}

function buildHeaders(p: Payload, etag: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {
    "metadata-flavor": "Google",
    server: "Metadata Server for VM",
    "x-xss-protection": "0",
    "x-frame-options": "SAMEORIGIN",
    "content-type": p.type === "json" ? JSON_TYPE : TEXT_TYPE,
  };
  if (p.status === 200) headers.etag = etag ?? p.etag ?? etagOf(p.body);
  return headers;
}

/** A 301 to `location` with the flavor headers (GCE's directory redirect). */
export function redirectResponse(location: string): Response {
  return new Response(null, {
    status: 301,
    headers: { ...FLAVOR_HEADERS, "content-type": "application/text", location },
  });
}

/** An error answer: one line of text (clients show it as is). */
export function errorPayload(status: number, message: string): Payload {
  return textPayload(`${message}\n`, status);
}
