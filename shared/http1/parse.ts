/**
 * Parsing one HTTP/1.1 request head, strictly: the gate and the metadata
 * servers face hostile local clients, so anything two parsers could read
 * differently is refused rather than guessed at:
 * - heads up to {@linkcode MAX_HEAD_BYTES}, no obs-fold, exactly one Host;
 * - at most one Content-Length and never together with Transfer-Encoding
 *   (the classic request-smuggling ambiguity);
 * - the request target is passed on as sent (like `Deno.serve`): handlers
 *   refuse dot segments and backslashes themselves before any URL parsing.
 */

/** Largest request head accepted (real clients send < 1 KiB). */
export const MAX_HEAD_BYTES = 8192;
/** Most header fields in one request (hyper's limit too; real clients send < 15). */
const MAX_HEADER_FIELDS = 100;

/**
 * What a handler reads of a request. `Request` satisfies it (so tests pass
 * real Requests); the connection loop passes a lighter object: building a
 * `Request` validates every header and parses the URL (measured ~9 µs, more
 * than a whole cached-token answer).
 */
export interface WireRequest {
  readonly method: string;
  /** `http://<Host><target>` exactly as sent (not normalised), like `Deno.serve`'s. */
  readonly url: string;
  readonly headers: {
    get(name: string): string | null;
    has(name: string): boolean;
  };
}

/** Header fields by lower-case name; repeated ones are joined like `Headers` does. */
export class FieldMap {
  readonly #map = new Map<string, string>();
  #sealed = false;
  add(lower: string, value: string): void {
    // Parsed heads are cached and shared by every request that repeats them.
    if (this.#sealed) throw new TypeError("a parsed request's headers are read-only");
    const old = this.#map.get(lower);
    this.#map.set(lower, old === undefined ? value : `${old}, ${value}`);
  }
  get(name: string): string | null {
    return this.#map.get(name.toLowerCase()) ?? null;
  }
  has(name: string): boolean {
    return this.#map.has(name.toLowerCase());
  }
  /** No more fields: from now on this map may be shared. */
  seal(): this {
    this.#sealed = true;
    return this;
  }
}

/** Reason phrases of the statuses this code sends. */
export const REASONS: Readonly<Record<number, string>> = {
  200: "OK",
  301: "Moved Permanently",
  304: "Not Modified",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  411: "Length Required",
  413: "Payload Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

// RFC 9110 token characters for header names and methods.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Visible ASCII only: no spaces, controls or non-ASCII in a request target.
const TARGET = /^\/[\x21-\x7e]*$/;
// Field values: visible ASCII, spaces and tabs.
const FIELD_VALUE = /^[\t\x20-\x7e]*$/;
// host[:port], [v6]:port: what the handlers' Host checks and redirects expect.
const HOST = /^[A-Za-z0-9.\-_:\[\]]{1,255}$/;
// Methods `Request` refuses to build (a TypeError): never served, so a
// handler never sees them (a thrown error there is a 500 and a log line).
const FORBIDDEN_METHODS: ReadonlySet<string> = new Set(["CONNECT", "TRACE", "TRACK"]);

/** The end of the head (index after CRLFCRLF) in `buf[from..end)`, or -1. */
export function headEnd(buf: Uint8Array, from: number, end: number): number {
  for (let i = Math.max(from, 3); i < end; i++) {
    if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) return i + 1;
  }
  return -1;
}

/** A parsed request head, or the status to refuse it with. */
export type Parsed =
  | {
    ok: true;
    req: WireRequest & { readonly headers: FieldMap };
    /** The client asked to close (HTTP/1.0 without keep-alive, or `Connection: close`). */
    close: boolean;
    /** Declared Content-Length (0 when none). */
    bodyLength: number;
    /** A Transfer-Encoding was declared: the body's length is unknown. */
    chunked: boolean;
  }
  | { ok: false; status: number; message: string };

function bad(status: number, message: string): Parsed {
  return { ok: false, status, message };
}

/** Options for {@linkcode parseHead}. */
export interface ParseOptions {
  /**
   * Accept the absolute form (`GET http://host/path`) too, which is what
   * Deno's `fetch` sends through a Unix-socket client (it treats the socket
   * as a proxy). Its authority must equal the Host header, so the two cannot
   * disagree about the target.
   */
  readonly absoluteForm?: boolean | undefined;
}

const ABSOLUTE = /^http:\/\/([^/?#]+)(\/[\x21-\x7e]*)?$/;

/** Parses one request head (without the final CRLFCRLF). */
export function parseHead(text: string, options: ParseOptions = {}): Parsed {
  const lines = text.split("\r\n");
  if (lines.length - 1 > MAX_HEADER_FIELDS) {
    return bad(431, `Request Header Fields Too Large: more than ${MAX_HEADER_FIELDS} fields`);
  }
  const parts = (lines[0] ?? "").split(" ");
  if (parts.length !== 3) return bad(400, "Bad Request: malformed request line");
  const [method, target, version] = parts as [string, string, string];
  if (!TOKEN.test(method)) return bad(400, "Bad Request: malformed method");
  if (FORBIDDEN_METHODS.has(method.toUpperCase())) {
    return bad(400, "Bad Request: this method is not served");
  }
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
    return bad(400, "Bad Request: only HTTP/1.1 and HTTP/1.0 are served");
  }
  let path = target;
  let authority: string | undefined;
  const abs = options.absoluteForm && target.startsWith("http://") ? ABSOLUTE.exec(target) : null;
  if (abs) {
    authority = abs[1]!;
    path = abs[2] ?? "/";
  }
  if (!TARGET.test(path)) return bad(400, "Bad Request: malformed request target");
  const fields = new FieldMap();
  let host: string | undefined;
  let close = version === "HTTP/1.0";
  let length: number | undefined;
  let chunked = false;
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
      chunked = true;
    } else if (lower === "content-length") {
      if (length !== undefined) return bad(400, "Bad Request: more than one Content-Length");
      if (!/^\d{1,10}$/.test(value)) return bad(400, "Bad Request: malformed Content-Length");
      length = Number(value);
    }
    fields.add(lower, value);
  }
  if (chunked && length !== undefined) {
    return bad(400, "Bad Request: both Content-Length and Transfer-Encoding");
  }
  if (host === undefined || !HOST.test(host)) {
    return bad(400, "Bad Request: missing or malformed Host header");
  }
  if (authority !== undefined && authority.toLowerCase() !== host.toLowerCase()) {
    return bad(400, "Bad Request: the target's authority differs from the Host header");
  }
  const url = `http://${host}${path}`;
  // The characters above still allow hosts the URL parser refuses (`[`,
  // `a:b`, `1.2.3.4.5`): refuse them here, once per distinct head (parses are
  // cached), rather than let every handler's `new URL` throw, answer 500 and
  // log the client's whole URL as an error, as often as a client likes.
  if (!URL.canParse(url)) return bad(400, "Bad Request: malformed Host header");
  const req = { method, url, headers: fields.seal() };
  return { ok: true, req, close, bodyLength: length ?? 0, chunked };
}
