/**
 * A small HTTP/1.1 server for ONE accepted connection: read a request head
 * (and a bounded body), call the handler, write the answer, repeat
 * (keep-alive) until the client closes, asks to close, or goes idle.
 *
 * Why our own loop instead of `Deno.serve`: `Deno.serve` owns its listener,
 * so it can neither serve a connection we accepted and vetted ourselves, nor
 * cap connections, time out idle or trickling ones, or survive EMFILE; and a
 * relay to a second listener would be a door around any check. The subset
 * served is small: heads as parse.ts allows, bodies only with a
 * Content-Length up to `maxBodyBytes`, answers whole (content-length) or
 * streamed (chunked, then close).
 *
 * While the handler works, the connection is still read: a client that
 * closes aborts `req.signal` (and cancels a streamed answer) at once, which
 * is what ends a prod approval nobody waits for any more.
 */
import {
  FieldMap,
  headEnd,
  MAX_HEAD_BYTES,
  type Parsed,
  parseHead,
  type WireRequest,
} from "./parse.ts";
import { Inbox, watch } from "./inbox.ts";
import type { TurnBudget } from "./turns.ts";
import { chunkBytes, headText, isStreaming, LAST_CHUNK, wireBytes } from "./wire.ts";

/** Per-connection state the owner of the connection (the server) tracks. */
export interface Http1Conn {
  /** ms since epoch after which the server may close the connection; 0 = no deadline. */
  deadline: number;
  /** Set by the owner when it has closed the connection (evicted, swept, shut down). */
  closed?: boolean;
  /** Set once a complete request head arrived: at the cap, silent connections go first. */
  spoke?: boolean;
}

/** A request as the loop hands it to a handler. */
export interface ServedRequest extends WireRequest {
  readonly headers: FieldMap;
  /** The body, read whole (at most `maxBodyBytes`); null when none was sent. */
  readonly body: Uint8Array<ArrayBuffer> | null;
  /**
   * Aborts when the client closes its connection. Read it before the
   * handler's first await: the connection is watched only for handlers that did.
   */
  readonly signal: AbortSignal;
}

/** The handler's side of the loop. */
export type Http1Handler = (req: ServedRequest) => Response | Promise<Response>;

/** Options for {@linkcode serveHttp1}. */
export interface Http1Options {
  readonly handler: Http1Handler;
  /**
   * A prebuilt answer for a request the caller knows well (a cached token),
   * without building a Response; undefined: the handler answers.
   */
  readonly hot?: ((req: WireRequest, close: boolean) => Uint8Array | undefined) | undefined;
  /** Turns a thrown handler error into an answer. */
  readonly onError: (err: unknown) => Response;
  /** The answer to a request the loop refuses itself (the connection closes after it). */
  readonly refuse: (status: number, message: string) => Uint8Array;
  /** Accept absolute-form targets (see parse.ts); the metadata servers do not. */
  readonly absoluteForm?: boolean | undefined;
  /** Largest body read. 0: bodies are never read; a request with one is answered, then closed. */
  readonly maxBodyBytes: number;
  /** Longest wait for the next request on an idle keep-alive connection. */
  readonly idleTimeoutMs: number;
  /** Longest time from a request's first byte to its complete head (and again for its body). */
  readonly headerTimeoutMs: number;
  /** The clock the deadlines are written in. */
  readonly now: () => number;
  /** Aborted: finish the current answer, then close. */
  readonly signal: AbortSignal;
  /**
   * This server's share of the thread (see turns.ts); one per listener, so a
   * flood on one socket spends its own budget, not another socket's.
   */
  readonly turns: TurnBudget;
}

const decoder = new TextDecoder();

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = await conn.write(bytes);
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

// Keep-alive clients send the same head again and again (a proxy refreshing
// its token): parsing is a pure function of the text, so bodiless requests
// that parsed are remembered. Bounded: emptied when full, so hostile heads
// cost memory only up to the bound.
const MAX_PARSED = 256;
const parsedHeads = [new Map<string, Parsed>(), new Map<string, Parsed>()] as const;

function parseCached(text: string, absoluteForm: boolean): Parsed {
  const cache = parsedHeads[absoluteForm ? 1 : 0];
  let parsed = cache.get(text);
  if (parsed === undefined) {
    parsed = parseHead(text, { absoluteForm });
    if (parsed.ok && parsed.bodyLength === 0 && !parsed.chunked) {
      if (cache.size >= MAX_PARSED) cache.clear();
      cache.set(text, parsed);
    }
  }
  return parsed;
}

/** Reads the next head; undefined when the client left or the connection must end. */
async function nextHead(
  inbox: Inbox,
  state: Http1Conn,
  options: Http1Options,
): Promise<Parsed | undefined> {
  const { now } = options;
  state.deadline = now() + (inbox.len > 0 ? options.headerTimeoutMs : options.idleTimeoutMs);
  let started = inbox.len > 0;
  let end = headEnd(inbox.buf, 0, inbox.len);
  while (end < 0) {
    if (inbox.len >= MAX_HEAD_BYTES) break;
    const from = inbox.len;
    await inbox.fill(MAX_HEAD_BYTES);
    if (inbox.eof) return undefined;
    if (!started) {
      started = true;
      state.deadline = now() + options.headerTimeoutMs;
    }
    end = headEnd(inbox.buf, from, inbox.len);
  }
  if (end < 0 || end > MAX_HEAD_BYTES) {
    return { ok: false, status: 431, message: "Request Header Fields Too Large" };
  }
  state.spoke = true;
  const text = decoder.decode(inbox.buf.subarray(0, end - 4));
  inbox.drop(end);
  return parseCached(text, options.absoluteForm === true);
}

/** Reads a declared body whole; undefined when the client left first. */
async function readBody(
  inbox: Inbox,
  length: number,
  state: Http1Conn,
  options: Http1Options,
): Promise<Uint8Array<ArrayBuffer> | undefined> {
  state.deadline = options.now() + options.headerTimeoutMs;
  while (inbox.len < length) {
    await inbox.fill(length);
    if (inbox.eof) return undefined;
  }
  return inbox.take(length);
}

/**
 * Writes a streamed answer chunk by chunk until it ends or the client
 * leaves; true when it ended whole (the connection may serve on).
 */
async function writeStream(inbox: Inbox, res: Response, head: Uint8Array): Promise<boolean> {
  const reader = res.body!.getReader();
  let streaming = true;
  const gone = () => void reader.cancel().catch(() => {});
  // Bytes the client sends meanwhile (its next request) stay buffered, up to a head's worth;
  // more ends the stream (see watch()).
  void watch(inbox, () => streaming, gone, MAX_HEAD_BYTES);
  try {
    await writeAll(inbox.conn, head);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (value.length > 0) await writeAll(inbox.conn, chunkBytes(value));
    }
    await writeAll(inbox.conn, LAST_CHUNK);
    return !inbox.eof && !inbox.overflow;
  } catch {
    // A failed write: the client is gone; the stream must learn it too.
    gone();
    return false;
  } finally {
    streaming = false;
  }
}

/** The request the handler sees; its signal exists only once someone asks for it. */
class Served implements ServedRequest {
  #abort: AbortController | undefined;
  constructor(
    readonly method: string,
    readonly url: string,
    readonly headers: FieldMap,
    readonly body: Uint8Array<ArrayBuffer> | null,
  ) {}
  get signal(): AbortSignal {
    // Not the server's stop: requests in flight at shutdown get the drain to finish.
    return (this.#abort ??= new AbortController()).signal;
  }
  /** True when the handler asked for the signal (so the connection must be watched). */
  get watched(): boolean {
    return this.#abort !== undefined;
  }
  abort(): void {
    this.#abort?.abort();
  }
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
  const inbox = new Inbox(conn);
  try {
    while (!options.signal.aborted) {
      const parsed = await nextHead(inbox, state, options);
      if (parsed === undefined) return;
      // Checked right before the work, and again after waiting: a connection
      // whose turn came must not serve one more request unchecked.
      for (let turn = options.turns.check(); turn; turn = options.turns.check()) {
        // A request waiting for its turn is not a trickling one: it must not
        // be the first evicted at the cap (the header timeout is shorter than
        // an idle connection's), and one that was must not be served (its
        // handler would start work, a mint or an approval, for nobody).
        state.deadline = options.now() + options.idleTimeoutMs;
        await turn;
      }
      // Evicted or swept while its head was read or it waited: never start its
      // work (a mint or an approval would run for nobody, and free its slot early).
      if (state.closed) return;
      if (!parsed.ok) {
        await writeAll(conn, options.refuse(parsed.status, parsed.message));
        return;
      }
      // The hot path, without the promise of answer(): a prebuilt answer to a bodiless request.
      const prebuilt = parsed.bodyLength === 0 && !parsed.chunked
        ? options.hot?.(parsed.req, parsed.close)
        : undefined;
      if (prebuilt) {
        state.deadline = options.now() + options.idleTimeoutMs;
        await writeAll(conn, prebuilt);
        if (parsed.close) return;
        continue;
      }
      if (!await answer(inbox, parsed, state, options)) return;
    }
  } catch {
    // Reset, closed by the deadline sweep, or shut down: nothing to answer.
  }
}

/** Answers one parsed request; false when the connection must end. */
async function answer(
  inbox: Inbox,
  parsed: Extract<Parsed, { ok: true }>,
  state: Http1Conn,
  options: Http1Options,
): Promise<boolean> {
  const { req, bodyLength, chunked } = parsed;
  const hasBody = chunked || bodyLength > 0;
  let close = parsed.close || options.signal.aborted;
  let body: Uint8Array<ArrayBuffer> | null = null;
  if (hasBody && options.maxBodyBytes === 0) {
    // Never read: its bytes cannot be told from the next request's, so close after answering.
    close = true;
  } else if (chunked) {
    await writeAll(
      inbox.conn,
      options.refuse(411, "Length Required: send the body with a Content-Length"),
    );
    return false;
  } else if (bodyLength > options.maxBodyBytes) {
    await writeAll(
      inbox.conn,
      options.refuse(413, `request body larger than ${options.maxBodyBytes} bytes`),
    );
    return false;
  } else if (hasBody) {
    const read = await readBody(inbox, bodyLength, state, options);
    if (read === undefined) return false;
    body = read;
  }
  if (state.closed) return false; // evicted while its body was read
  // No deadline while the handler works (approvals and wait_for_change wait, bounded elsewhere).
  state.deadline = 0;
  let res: Response;
  try {
    const served = new Served(req.method, req.url, req.headers, body);
    const pending = options.handler(served);
    // Watched only when the handler took the signal before its first await
    // (the gate's `watched()` does; the metadata handlers never look at it).
    if (pending instanceof Promise && served.watched) {
      let working = true;
      const gone = () => served.abort();
      void watch(inbox, () => working, gone, MAX_HEAD_BYTES);
      res = await pending.finally(() => (working = false));
    } else res = pending instanceof Promise ? await pending : pending;
  } catch (err) {
    res = options.onError(err);
  }
  if (isStreaming(res) && req.method !== "HEAD") {
    // While it streams there is no deadline: a lease lasts as long as its session.
    const head = headText(res.status, res.headers, { close, chunked: true });
    const whole = await writeStream(inbox, res, new TextEncoder().encode(head));
    state.deadline = options.now() + options.idleTimeoutMs;
    return whole && !close;
  }
  close ||= options.signal.aborted || inbox.eof || inbox.overflow;
  const bytes = await wireBytes(res, req.method === "HEAD", close);
  // A client that does not read its answer must not hold the slot forever.
  state.deadline = options.now() + options.idleTimeoutMs;
  await writeAll(inbox.conn, bytes);
  return !close;
}
