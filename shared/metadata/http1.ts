/**
 * A small HTTP/1.1 server for ONE accepted connection: read a request head,
 * call the handler, write the answer, repeat (keep-alive) until the client
 * closes, asks to close, or goes idle.
 *
 * Why our own loop instead of `Deno.serve`: `Deno.serve` owns its listener,
 * so it can neither serve a connection we accepted and vetted ourselves (the
 * PID-restricted proxy used to relay those to a second, path-named Unix
 * listener that any same-uid process could connect to directly), nor cap
 * connections, time out idle ones, or survive EMFILE. Metadata requests are
 * tiny GET/HEADs without bodies, so the subset needed is small:
 * - request heads up to {@linkcode MAX_HEAD_BYTES}, no obs-fold, one Host;
 * - request bodies are never read: a request that declares one is answered
 *   and the connection closed (its bytes cannot be told from the next request);
 * - the request target must be in normal form (what the URL parser would
 *   keep): dot segments or backslashes would otherwise be rewritten before
 *   the handler could refuse them.
 */
import { prebuiltWire } from "./responses.ts";

/** Largest request head accepted (real clients send < 1 KiB). */
export const MAX_HEAD_BYTES = 8192;

/**
 * What a metadata handler reads of a request. `Request` satisfies it (so
 * `Deno.serve` and tests pass real Requests); this loop passes a lighter
 * object: building a `Request` validates every header and parses the URL
 * (measured ~9 µs, more than the whole cached-token answer).
 */
export interface MetadataRequest {
  readonly method: string;
  /** `http://<Host><target>` exactly as sent (not normalised), like `Deno.serve`'s. */
  readonly url: string;
  readonly headers: {
    get(name: string): string | null;
    has(name: string): boolean;
  };
}

/** The handler's side of the loop. */
export type Http1Handler = (req: MetadataRequest) => Response | Promise<Response>;

/** Header names are matched case-insensitively; repeated ones are joined like `Headers` does. */
class FieldMap {
  readonly #map = new Map<string, string>();
  add(lower: string, value: string): void {
    const old = this.#map.get(lower);
    this.#map.set(lower, old === undefined ? value : `${old}, ${value}`);
  }
  get(name: string): string | null {
    return this.#map.get(name.toLowerCase()) ?? null;
  }
  has(name: string): boolean {
    return this.#map.has(name.toLowerCase());
  }
}

/** Per-connection state the owner of the connection (the server) tracks. */
export interface Http1Conn {
  /** ms since epoch after which the server may close the connection; 0 = no deadline. */
  deadline: number;
}

/** Options for {@linkcode serveHttp1}. */
export interface Http1Options {
  readonly handler: Http1Handler;
  /** Turns a thrown handler error into an answer. */
  readonly onError: (err: unknown) => Response;
  /** Longest wait for the next request on an idle keep-alive connection. */
  readonly idleTimeoutMs: number;
  /** Longest time from a request's first byte to its complete head. */
  readonly headerTimeoutMs: number;
  /** The clock the deadlines are written in. */
  readonly now: () => number;
  /** Aborted: finish the current answer, then close. */
  readonly signal: AbortSignal;
}

const REASONS: Readonly<Record<number, string>> = {
  200: "OK",
  301: "Moved Permanently",
  304: "Not Modified",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Payload Too Large",
  414: "URI Too Long",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();
// RFC 9110 token characters for header names and methods.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Visible ASCII only: no spaces, controls or non-ASCII in a request target.
const TARGET = /^\/[\x21-\x7e]*$/;
// Field values: visible ASCII, spaces and tabs.
const FIELD_VALUE = /^[\t\x20-\x7e]*$/;
// host[:port], [v6]:port: what the handler's Host check and redirects expect.
const HOST = /^[A-Za-z0-9.\-_:\[\]]{1,255}$/;

/** The end of the head (index after CRLFCRLF) in `buf[from..end)`, or -1. */
function headEnd(buf: Uint8Array, from: number, end: number): number {
  for (let i = Math.max(from, 3); i < end; i++) {
    if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) return i + 1;
  }
  return -1;
}

/** A parsed request, or the status to refuse it with. */
export type Parsed =
  | { ok: true; req: MetadataRequest; close: boolean }
  | { ok: false; status: number; message: string };

function bad(status: number, message: string): Parsed {
  return { ok: false, status, message };
}

/**
 * Parses one request head (without the final CRLFCRLF). The target is passed
 * on as sent, like `Deno.serve` does: the handler refuses dot segments and
 * backslashes itself before any URL parsing.
 */
export function parseHead(text: string): Parsed {
  const lines = text.split("\r\n");
  const parts = (lines[0] ?? "").split(" ");
  if (parts.length !== 3) return bad(400, "Bad Request: malformed request line");
  const [method, target, version] = parts as [string, string, string];
  if (!TOKEN.test(method)) return bad(400, "Bad Request: malformed method");
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
    return bad(400, "Bad Request: only HTTP/1.1 and HTTP/1.0 are served");
  }
  if (!TARGET.test(target)) return bad(400, "Bad Request: malformed request target");
  const fields = new FieldMap();
  let host: string | undefined;
  let close = version === "HTTP/1.0";
  let hasBody = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    // No name, or obs-fold (a line starting with whitespace): refuse, as RFC 9112 allows.
    if (colon <= 0) return bad(400, "Bad Request: malformed header line");
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return bad(400, "Bad Request: malformed header name");
    const value = line.slice(colon + 1).trim();
    if (!FIELD_VALUE.test(value)) return bad(400, "Bad Request: malformed header value");
    const lower = name.toLowerCase();
    if (lower === "host") {
      // Two Host headers could make us and a client disagree about the target.
      if (host !== undefined) return bad(400, "Bad Request: more than one Host header");
      host = value;
    } else if (lower === "connection") {
      const v = value.toLowerCase();
      if (v.includes("close")) close = true;
      else if (v.includes("keep-alive")) close = false;
    } else if (lower === "transfer-encoding") {
      hasBody = true;
    } else if (lower === "content-length") {
      if (!/^\d{1,10}$/.test(value)) return bad(400, "Bad Request: malformed Content-Length");
      if (Number(value) > 0) hasBody = true;
    }
    fields.add(lower, value);
  }
  if (host === undefined || !HOST.test(host)) {
    return bad(400, "Bad Request: missing or malformed Host header");
  }
  // A request that declares a body is answered, then the connection closed:
  // its body is never read, so its bytes cannot be mistaken for a request.
  const req: MetadataRequest = { method, url: `http://${host}${target}`, headers: fields };
  return { ok: true, req, close: close || hasBody };
}

/** The bytes of `res` on the wire (HEAD: headers only). */
async function serialize(res: Response, head: boolean, close: boolean): Promise<Uint8Array> {
  if (!head && !close) {
    const wire = prebuiltWire(res);
    if (wire) return wire;
  }
  const body = res.body && !head ? await res.bytes() : undefined;
  let text = `HTTP/1.1 ${res.status} ${REASONS[res.status] ?? "Unknown"}\r\n`;
  for (const [k, v] of res.headers) {
    if (k === "content-length" || k === "connection" || k === "transfer-encoding") continue;
    text += `${k}: ${v}\r\n`;
  }
  if (!head && res.status !== 204 && res.status !== 304) {
    text += `content-length: ${body?.length ?? 0}\r\n`;
  }
  text += close ? "connection: close\r\n\r\n" : "\r\n";
  const headBytes = encoder.encode(text);
  if (!body || body.length === 0) return headBytes;
  const out = new Uint8Array(headBytes.length + body.length);
  out.set(headBytes);
  out.set(body, headBytes.length);
  return out;
}

/** A plain-text error answer with the metadata server's headers, then close. */
export function errorBytes(status: number, message: string): Uint8Array {
  const body = `${message}\n`;
  return encoder.encode(
    `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\nmetadata-flavor: Google\r\n` +
      `server: Metadata Server for VM\r\ncontent-type: application/text\r\n` +
      `content-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
  );
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

/**
 * Serves `conn` until it closes. `state.deadline` is kept current so the
 * owner can close connections that idle or trickle past their deadline (a
 * closed conn makes the pending read here fail, which ends the loop).
 * Never throws; never closes `conn` (the caller does).
 */
export async function serveHttp1(
  conn: Deno.Conn,
  state: Http1Conn,
  options: Http1Options,
): Promise<void> {
  const { now } = options;
  let buf = new Uint8Array(2048);
  let len = 0;
  try {
    while (!options.signal.aborted) {
      state.deadline = now() + options.idleTimeoutMs;
      let end = headEnd(buf, 0, len);
      let started = len > 0;
      if (started) state.deadline = now() + options.headerTimeoutMs;
      while (end < 0) {
        if (len >= MAX_HEAD_BYTES) {
          await writeAll(conn, errorBytes(431, "Request Header Fields Too Large"));
          return;
        }
        if (len === buf.length) {
          const bigger = new Uint8Array(Math.min(buf.length * 2, MAX_HEAD_BYTES));
          bigger.set(buf);
          buf = bigger;
        }
        const n = await conn.read(buf.subarray(len));
        if (n === null) return; // the client closed
        if (!started) {
          started = true;
          state.deadline = now() + options.headerTimeoutMs;
        }
        const from = len;
        len += n;
        end = headEnd(buf, from, len);
      }
      const parsed = parseHead(decoder.decode(buf.subarray(0, end - 4)));
      buf.copyWithin(0, end, len);
      len -= end;
      if (!parsed.ok) {
        await writeAll(conn, errorBytes(parsed.status, parsed.message));
        return;
      }
      // No deadline while the handler works (wait_for_change holds up to its bounded timeout).
      state.deadline = 0;
      let res: Response;
      try {
        res = await options.handler(parsed.req);
      } catch (err) {
        res = options.onError(err);
      }
      const close = parsed.close || options.signal.aborted;
      const bytes = await serialize(res, parsed.req.method === "HEAD", close);
      // A client that does not read its answer must not hold the slot forever.
      state.deadline = now() + options.idleTimeoutMs;
      await writeAll(conn, bytes);
      if (close) return;
    }
  } catch {
    // Reset, closed by the deadline sweep, or shut down: nothing to answer.
  }
}
