/**
 * Reading the gate's answer to a session lease request: the HTTP/1.1 head,
 * then the body whole (an error) or as lines (the lease's events), chunked or
 * not. Every line and head is bounded: the gate is trusted, the socket path
 * may not be.
 */
import { GateError } from "./errors.ts";

/** Longest line (event) or answer head accepted from the gate. */
const MAX_LINE = 64 * 1024;
const decoder = new TextDecoder();

/** Splits an HTTP/1.1 chunked body into its data, incrementally. */
export function createChunkedDecoder(): (input: Uint8Array) => Uint8Array[] {
  let buf = new Uint8Array(0);
  let left = -1; // bytes of data left in the current chunk; -1: reading a size line
  let trailer = 0; // CRLF bytes still to skip after a chunk's data
  let finished = false; // the last chunk was seen: what follows (trailers) is ignored
  return (input) => {
    if (finished) return [];
    const all = new Uint8Array(buf.length + input.length);
    all.set(buf);
    all.set(input, buf.length);
    const out: Uint8Array[] = [];
    let pos = 0;
    for (;;) {
      if (trailer > 0) {
        const k = Math.min(trailer, all.length - pos);
        pos += k;
        trailer -= k;
        if (trailer > 0) break;
      }
      if (left < 0) {
        const eol = all.indexOf(10, pos);
        if (eol < 0) {
          if (all.length - pos > 1024) throw new GateError("upstream", "bad chunk size line");
          break;
        }
        const size = parseInt(decoder.decode(all.subarray(pos, eol)).split(";")[0]!.trim(), 16);
        if (!Number.isSafeInteger(size) || size < 0) {
          throw new GateError("upstream", "bad chunk size in the gate's answer");
        }
        pos = eol + 1;
        if (size === 0) {
          finished = true;
          pos = all.length;
          break;
        }
        left = size;
      }
      const k = Math.min(left, all.length - pos);
      if (k > 0) out.push(all.subarray(pos, pos + k));
      pos += k;
      left -= k;
      if (left > 0) break;
      left = -1;
      trailer = 2;
    }
    buf = all.slice(pos);
    return out;
  };
}

/** The status line and the headers that matter here. */
export interface AnswerHead {
  readonly status: number;
  readonly contentType: string;
  readonly chunked: boolean;
  readonly contentLength: number | undefined;
}

/** Reads one HTTP/1.1 answer: its head, then its body whole or line by line. */
export interface LineReader {
  head(): Promise<AnswerHead>;
  /** The rest of a non-streamed answer (bounded). */
  rest(head: AnswerHead): Promise<string>;
  /** The next line of the streamed body; undefined at its end. */
  line(): Promise<string | undefined>;
}

/** A {@linkcode LineReader} over `conn` (bounded: lines and heads up to 64 KiB). */
export function createLineReader(conn: Deno.Conn): LineReader {
  const chunk = new Uint8Array(16 * 1024);
  let raw = new Uint8Array(0); // bytes read but not consumed as head
  let text = ""; // decoded body text not yet returned as lines
  let dechunk: ((b: Uint8Array) => Uint8Array[]) | undefined;
  let eof = false;
  const stream = new TextDecoder();

  async function fill(): Promise<boolean> {
    const k = await conn.read(chunk);
    if (k === null) return false;
    const next = new Uint8Array(raw.length + k);
    next.set(raw);
    next.set(chunk.subarray(0, k), raw.length);
    raw = next;
    return true;
  }

  function feed(): void {
    const parts = dechunk ? dechunk(raw) : [raw];
    for (const p of parts) text += stream.decode(p, { stream: true });
    raw = new Uint8Array(0);
  }

  return {
    async head() {
      for (;;) {
        const end = findHeadEnd(raw);
        if (end >= 0) {
          const lines = decoder.decode(raw.subarray(0, end)).split("\r\n");
          raw = raw.slice(end + 4);
          const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "")?.[1]);
          if (!status) throw new GateError("upstream", "the gate's answer is not HTTP/1.x");
          const fields = lines.slice(1).map((l) => l.toLowerCase());
          const chunked = fields.some((l) => /^transfer-encoding:.*chunked/.test(l));
          const cl = fields.find((l) => l.startsWith("content-length:"));
          const ct = fields.find((l) => l.startsWith("content-type:"));
          if (chunked) dechunk = createChunkedDecoder();
          return {
            status,
            contentType: ct === undefined ? "" : ct.slice(13).trim(),
            chunked,
            contentLength: cl === undefined ? undefined : Number(cl.slice(15).trim()),
          };
        }
        if (raw.length > MAX_LINE) {
          throw new GateError("upstream", "the gate's answer head is too large");
        }
        if (!await fill()) {
          throw new GateError("gate_unreachable", "the gate closed the connection");
        }
      }
    },
    async rest(head) {
      while (
        (head.contentLength === undefined || raw.length < head.contentLength) &&
        raw.length <= MAX_LINE
      ) {
        if (!await fill()) break;
      }
      return decoder.decode(raw.subarray(0, head.contentLength ?? raw.length));
    },
    async line() {
      for (;;) {
        if (raw.length > 0) feed();
        const nl = text.indexOf("\n");
        if (nl >= 0) {
          const l = text.slice(0, nl);
          text = text.slice(nl + 1);
          return l.trim();
        }
        if (text.length > MAX_LINE) {
          throw new GateError("upstream", "an event from the gate is too long");
        }
        if (eof) return undefined;
        if (!await fill()) eof = true;
      }
    },
  };
}

function findHeadEnd(buf: Uint8Array): number {
  for (let i = 0; i + 3 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}
