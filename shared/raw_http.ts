/**
 * A minimal HTTP/1.1 client: one request per connection, over TCP or a Unix
 * socket, for gcp-kube-token (to the metadata server) and the gate client (to
 * the gate socket).
 *
 * Why not fetch: Deno's fetch initialises a full HTTP client (pool, TLS
 * roots) on first use, measured at ~18 ms in a fresh process — more than the
 * rest of gcp-kube-token, and most of with-prod's wait after its own start.
 * It also honours HTTP(S)_PROXY, which could send a token to a proxy. Both
 * peers are plain HTTP/1.1 servers we know, so a request with
 * `Connection: close` and a bounded read is all that is needed.
 */

/** Where to connect. */
export type RawTarget =
  | { readonly transport: "tcp"; readonly hostname: string; readonly port: number }
  | { readonly transport: "unix"; readonly path: string };

/** Options for {@linkcode rawRequest}. */
export interface RawRequestOptions {
  readonly target: RawTarget;
  readonly method: "GET" | "POST" | "DELETE";
  /** Sent as the Host header. */
  readonly hostHeader: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  /** A UTF-8 body (Content-Length is set). */
  readonly body?: string;
  readonly signal: AbortSignal;
  /** Largest response (head + body) accepted. */
  readonly maxBytes: number;
}

/** Options for {@linkcode rawGet}. */
export interface RawGetOptions {
  readonly hostname: string;
  readonly port: number;
  /** Sent as the Host header. */
  readonly hostHeader: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly signal: AbortSignal;
  /** Largest response (head + body) accepted. */
  readonly maxBytes: number;
}

/** Raised for a malformed or oversized answer (not a network failure). */
export class RawHttpError extends Error {
  override name = "RawHttpError";
}

function indexOfCrlfCrlf(buf: Uint8Array, end: number): number {
  for (let i = 3; i < end; i++) {
    if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) {
      return i + 1;
    }
  }
  return -1;
}

function decodeChunked(body: Uint8Array): Uint8Array {
  const out: Uint8Array[] = [];
  let size = 0;
  let pos = 0;
  const dec = new TextDecoder();
  for (;;) {
    let eol = -1;
    for (let i = pos; i + 1 < body.length; i++) {
      if (body[i] === 13 && body[i + 1] === 10) {
        eol = i;
        break;
      }
    }
    if (eol < 0) throw new RawHttpError("truncated chunked body");
    const len = parseInt(dec.decode(body.subarray(pos, eol)).split(";")[0]!.trim(), 16);
    if (!Number.isFinite(len) || len < 0) throw new RawHttpError("bad chunk size");
    pos = eol + 2;
    if (len === 0) break;
    if (pos + len > body.length) throw new RawHttpError("truncated chunk");
    out.push(body.subarray(pos, pos + len));
    size += len;
    pos += len + 2;
  }
  const all = new Uint8Array(size);
  let off = 0;
  for (const c of out) {
    all.set(c, off);
    off += c.length;
  }
  return all;
}

/** An HTTP answer: status, headers (names lower-cased), body text. */
export interface RawAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Sends one GET over TCP (see {@linkcode rawRequest}). */
export function rawGet(options: RawGetOptions): Promise<RawAnswer> {
  return rawRequest({
    target: { transport: "tcp", hostname: options.hostname, port: options.port },
    method: "GET",
    hostHeader: options.hostHeader,
    path: options.path,
    headers: options.headers,
    signal: options.signal,
    maxBytes: options.maxBytes,
  });
}

/** The request's bytes: head, then the body if any (`Connection: close`). */
function encodeRequest(options: RawRequestOptions): Uint8Array {
  const body = options.body === undefined ? undefined : new TextEncoder().encode(options.body);
  const lines = [
    `${options.method} ${options.path} HTTP/1.1`,
    `Host: ${options.hostHeader}`,
    ...Object.entries(options.headers).map(([k, v]) => `${k}: ${v}`),
    ...(body ? [`Content-Length: ${body.length}`] : []),
    "Connection: close",
    "",
    "",
  ];
  const head = new TextEncoder().encode(lines.join("\r\n"));
  if (!body) return head;
  const req = new Uint8Array(head.length + body.length);
  req.set(head);
  req.set(body, head.length);
  return req;
}

/** The status and headers of an answer's head (without its final CRLF CRLF). */
function parseHead(bytes: Uint8Array): { status: number; headers: Record<string, string> } {
  const answerHead = new TextDecoder().decode(bytes).split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(answerHead[0] ?? "");
  if (!status) throw new RawHttpError("not an HTTP/1.x answer");
  // No prototype: a header named "constructor" must not meet Object's.
  const headers: Record<string, string> = Object.create(null);
  for (const line of answerHead.slice(1)) {
    const i = line.indexOf(":");
    if (i <= 0) throw new RawHttpError("malformed header");
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status: Number(status[1]), headers };
}

/**
 * Sends one request and returns the answer. Plain objects, not
 * Response/Headers: those load more of Deno's fetch machinery than needed.
 */
export async function rawRequest(options: RawRequestOptions): Promise<RawAnswer> {
  const { signal, target } = options;
  signal.throwIfAborted();
  const conn = target.transport === "unix"
    ? await Deno.connect({ transport: "unix", path: target.path })
    : await Deno.connect({ hostname: target.hostname, port: target.port });
  let closed = false;
  const close = (): void => {
    if (!closed) {
      closed = true;
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  };
  const onAbort = (): void => close();
  signal.addEventListener("abort", onAbort);
  try {
    const req = encodeRequest(options);
    for (let off = 0; off < req.length;) off += await conn.write(req.subarray(off));

    const buf = new Uint8Array(options.maxBytes + 1);
    let n = 0;
    let headEnd = -1;
    let contentLength: number | undefined;
    for (;;) {
      if (n > options.maxBytes) {
        throw new RawHttpError(`answer larger than ${options.maxBytes} bytes`);
      }
      let k: number | null;
      try {
        k = await conn.read(buf.subarray(n));
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        throw err;
      }
      if (k === null) break;
      n += k;
      if (headEnd < 0) {
        headEnd = indexOfCrlfCrlf(buf, n);
        if (headEnd >= 0) {
          const m = /\r\ncontent-length:\s*(\d+)/i.exec(
            new TextDecoder().decode(buf.subarray(0, headEnd)),
          );
          if (m) contentLength = Number(m[1]);
        }
      }
      // Done as soon as the declared body is complete: no need to wait for close.
      if (headEnd >= 0 && contentLength !== undefined && n >= headEnd + contentLength) break;
    }
    if (signal.aborted) throw signal.reason;
    if (headEnd < 0) throw new RawHttpError("incomplete HTTP answer");
    const { status, headers } = parseHead(buf.subarray(0, headEnd - 4));
    let answer: Uint8Array = buf.subarray(headEnd, n);
    if (contentLength !== undefined) answer = answer.subarray(0, contentLength);
    else if (/chunked/i.test(headers["transfer-encoding"] ?? "")) answer = decodeChunked(answer);
    return { status, headers, body: new TextDecoder().decode(answer) };
  } finally {
    signal.removeEventListener("abort", onAbort);
    close();
  }
}
