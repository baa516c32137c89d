/**
 * What was read from a connection and not consumed yet, and the watcher that
 * keeps reading while a request is served, so a client that leaves is
 * noticed at once.
 */

/** Largest single read: bodies (up to 64 KiB) arrive in a few of them. */
const READ_CHUNK = 8192;

/** What was read from the connection and not consumed yet; at most one read in flight. */
export class Inbox {
  buf: Uint8Array<ArrayBuffer> = new Uint8Array(2048);
  len: number = 0;
  eof: boolean = false;
  /** The client sent more than allowed while its request was served: answer it, then close. */
  overflow: boolean = false;
  #reading: Promise<void> | undefined;
  // A read lands here and is appended when it completes. Reading straight
  // into `buf` at `len` is wrong: a watcher's read stays pending while the
  // loop consumes requests already buffered (drop/take move the bytes), so
  // the bytes would land after stale ones and an old request be served again.
  readonly #chunk = new Uint8Array(READ_CHUNK);
  constructor(readonly conn: Deno.Conn) {}

  /** Reads once more (or joins the read in flight), holding at most `limit` bytes. */
  fill(limit: number): Promise<void> {
    return this.#reading ??= this.#read(limit);
  }

  async #read(limit: number): Promise<void> {
    // Never more than `limit` in all: a body read does not pull in what follows it.
    const room = Math.min(READ_CHUNK, Math.max(1, limit - this.len));
    try {
      const n = await this.conn.read(this.#chunk.subarray(0, room));
      if (n === null) this.eof = true;
      else this.#append(n, limit);
    } catch {
      // Reset, or closed by the deadline sweep: the same as the client leaving.
      this.eof = true;
    }
    // Cleared here, not in a .finally(): one promise less per request on the hot path.
    this.#reading = undefined;
  }

  #append(n: number, limit: number): void {
    const need = this.len + n;
    if (need > this.buf.length) {
      const bigger = new Uint8Array(Math.max(need, Math.min(this.buf.length * 2, limit)));
      bigger.set(this.buf.subarray(0, this.len));
      this.buf = bigger;
    }
    this.buf.set(this.#chunk.subarray(0, n), this.len);
    this.len = need;
  }

  /** Removes the first `n` bytes, returning a copy of them. */
  take(n: number): Uint8Array<ArrayBuffer> {
    const out = this.buf.slice(0, n);
    this.drop(n);
    return out;
  }

  /** Removes the first `n` bytes. */
  drop(n: number): void {
    if (n < this.len) this.buf.copyWithin(0, n, this.len);
    this.len -= n;
  }
}

/**
 * Reads on while `busy()` holds, so a client that leaves is noticed at once:
 * then `onGone` runs. Bytes a client sends meanwhile stay buffered for the
 * next request, up to `limit`. A client that sends more is treated as gone
 * too (and the connection closes after the answer): were reading to stop
 * there, its leaving would go unnoticed, and an approval would stay on
 * screen for nobody (real clients never pipeline behind a waiting request).
 */
export async function watch(
  inbox: Inbox,
  busy: () => boolean,
  onGone: () => void,
  limit: number,
): Promise<void> {
  while (busy() && !inbox.eof && inbox.len < limit) await inbox.fill(limit);
  if (!busy()) return;
  if (!inbox.eof) inbox.overflow = true;
  onGone();
}
