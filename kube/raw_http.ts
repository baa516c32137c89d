/**
 * A minimal HTTP/1.1 GET over a plain TCP connection, for gcp-kube-token.
 *
 * Why not fetch: Deno's fetch initialises a full HTTP client (pool, TLS
 * roots) that costs more start-up time than the rest of the program, and it
 * honours HTTP(S)_PROXY, which could send the token to a proxy. The metadata
 * server is a plain HTTP/1.1 server on a known host:port, so a GET with
 * `Connection: close` and a bounded read is all that is needed.
 */

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

/**
 * Sends one GET and returns the answer. Plain objects, not Response/Headers:
 * those load more of Deno's fetch machinery than this whole program needs.
 */
export async function rawGet(options: RawGetOptions): Promise<RawAnswer> {
  const { signal } = options;
  signal.throwIfAborted();
  const conn = await Deno.connect({ hostname: options.hostname, port: options.port });
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
    const lines = [
      `GET ${options.path} HTTP/1.1`,
      `Host: ${options.hostHeader}`,
      ...Object.entries(options.headers).map(([k, v]) => `${k}: ${v}`),
      "Connection: close",
      "",
      "",
    ];
    const req = new TextEncoder().encode(lines.join("\r\n"));
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
    const head = new TextDecoder().decode(buf.subarray(0, headEnd - 4)).split("\r\n");
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? "");
    if (!status) throw new RawHttpError("not an HTTP/1.x answer");
    const headers: Record<string, string> = {};
    for (const line of head.slice(1)) {
      const i = line.indexOf(":");
      if (i <= 0) throw new RawHttpError("malformed header");
      const name = line.slice(0, i).trim().toLowerCase();
      const value = line.slice(i + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    let body: Uint8Array = buf.subarray(headEnd, n);
    if (contentLength !== undefined) body = body.subarray(0, contentLength);
    else if (/chunked/i.test(headers["transfer-encoding"] ?? "")) body = decodeChunked(body);
    return { status: Number(status[1]), headers, body: new TextDecoder().decode(body) };
  } finally {
    signal.removeEventListener("abort", onAbort);
    close();
  }
}
