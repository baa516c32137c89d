/**
 * Responses as HTTP/1.1 bytes: whole answers (content-length), prebuilt
 * answers a hot path reuses, and streamed answers (chunked, for the gate's
 * session lease).
 */
import { REASONS } from "./parse.ts";

const encoder = new TextEncoder();

// A Response made from a reused payload maps to its complete keep-alive
// bytes, so the connection loop writes them without reading the body or
// iterating the headers again. Weak: a Response that was served is collected.
const wires = new WeakMap<Response, Uint8Array>();
// Responses whose body is a long-lived stream, written chunk by chunk.
const streams = new WeakSet<Response>();

/** Remembers `bytes` as the complete keep-alive answer for `res` (see {@linkcode wireBytes}). */
export function attachWire(res: Response, bytes: Uint8Array): Response {
  wires.set(res, bytes);
  return res;
}

/**
 * A Response whose body is written as it is produced (chunked), and whose
 * stream is cancelled as soon as the client closes its connection: what the
 * gate's session lease relies on. Other bodies are read whole first.
 */
export function streamingResponse(
  body: ReadableStream<Uint8Array>,
  headers: Readonly<Record<string, string>>,
): Response {
  const res = new Response(body, { headers: { ...headers } });
  streams.add(res);
  return res;
}

/** True for a Response made by {@linkcode streamingResponse}. */
export function isStreaming(res: Response): boolean {
  return streams.has(res);
}

/** The status line and header lines of an answer, up to and including the blank line. */
export function headText(
  status: number,
  headers: Iterable<[string, string]>,
  tail: { length?: number; close: boolean; chunked?: boolean },
): string {
  let text = `HTTP/1.1 ${status} ${REASONS[status] ?? "Unknown"}\r\n`;
  for (const [k, v] of headers) {
    if (k === "content-length" || k === "connection" || k === "transfer-encoding") continue;
    text += `${k}: ${v}\r\n`;
  }
  if (tail.chunked) text += "transfer-encoding: chunked\r\n";
  else if (tail.length !== undefined) text += `content-length: ${tail.length}\r\n`;
  return text + (tail.close ? "connection: close\r\n\r\n" : "\r\n");
}

/** A whole answer: head and body. */
export function answerBytes(
  status: number,
  headers: Iterable<[string, string]>,
  body: string | Uint8Array,
  close: boolean,
): Uint8Array {
  const b = typeof body === "string" ? encoder.encode(body) : body;
  const head = encoder.encode(headText(status, headers, { length: b.length, close }));
  const out = new Uint8Array(head.length + b.length);
  out.set(head);
  out.set(b, head.length);
  return out;
}

/** The bytes of `res` on the wire (HEAD: headers only). Not for streaming responses. */
export async function wireBytes(res: Response, head: boolean, close: boolean): Promise<Uint8Array> {
  if (!head && !close) {
    const wire = wires.get(res);
    if (wire) return wire;
  }
  if (head) {
    // Headers only, without a length: nothing follows on the wire.
    await res.body?.cancel();
    return encoder.encode(headText(res.status, res.headers, { close }));
  }
  const body = res.body ? await res.bytes() : new Uint8Array(0);
  if (res.status === 204 || res.status === 304) {
    return encoder.encode(headText(res.status, res.headers, { close }));
  }
  return answerBytes(res.status, res.headers, body, close);
}

/** One chunk of a chunked body. */
export function chunkBytes(data: Uint8Array): Uint8Array {
  const size = encoder.encode(`${data.length.toString(16)}\r\n`);
  const out = new Uint8Array(size.length + data.length + 2);
  out.set(size);
  out.set(data, size.length);
  out.set([13, 10], size.length + data.length);
  return out;
}

/** The last chunk. */
export const LAST_CHUNK: Uint8Array = encoder.encode("0\r\n\r\n");
