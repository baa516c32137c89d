/**
 * One hash-chained, size-rotated JSON-lines file (the audit log and its prod
 * decisions file are two of them). Every line the gate writes ends with two
 * fields: `seq`, its number in the chain, and `prev`, the SHA-256 of the
 * previous line's exact text. The chain runs on across rotation (the first
 * line of a new file names the last line of the rotated one), and the hash
 * and number of the last line written are kept in a separate 0600 file
 * (`<file>.head`), so a truncated tail or a deleted oldest file is detected
 * too (`gcp-gate audit verify`, gate/audit_verify.ts).
 *
 * What this proves: an edit, a removal or an insertion by anyone who does not
 * also rewrite every later line and the head file. A process with the
 * user's uid can do both; the head hash the gate logs at rotation and exit
 * (to its own log, e.g. the journal) is the anchor kept elsewhere.
 */
import { createHash } from "node:crypto";
import type { Logger } from "../shared/log.ts";

/** The `prev` of the very first line of a chain. */
export const GENESIS: string = "0".repeat(64);

/** Where the chain stands: the last line written. */
export interface ChainHead {
  /** `seq` of the last line written (0: none yet). */
  readonly seq: number;
  /** SHA-256 (hex) of the last line written ({@linkcode GENESIS} when none). */
  readonly hash: string;
  /** `seq` of the first line still on disk after the last rotation dropped a file. */
  readonly oldest_seq: number;
}

/** SHA-256 of one line's text (without its newline), hex. */
export function lineHash(line: string): string {
  return createHash("sha256").update(line).digest("hex");
}

/**
 * Appends the chain fields to one JSON object's text. Text, not a re-parse:
 * the fields before them stay byte for byte what the gate wrote.
 */
export function chainLine(json: string, seq: number, prev: string): string {
  return `${json.slice(0, -1)},"seq":${seq},"prev":"${prev}"}`;
}

/** The head file of a log file. */
export function headPath(path: string): string {
  return `${path}.head`;
}

/** Reads a head file; undefined when missing or not a head. */
export function readHead(path: string): ChainHead | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(Deno.readTextFileSync(headPath(path)));
  } catch {
    return undefined;
  }
  const h = raw as Partial<ChainHead>;
  if (
    !Number.isSafeInteger(h.seq) || typeof h.hash !== "string" || !/^[0-9a-f]{64}$/.test(h.hash) ||
    !Number.isSafeInteger(h.oldest_seq)
  ) return undefined;
  return { seq: h.seq!, hash: h.hash, oldest_seq: h.oldest_seq! };
}

/** Writes the head file atomically (temp file + rename), private. */
function writeHead(path: string, head: ChainHead): void {
  const tmp = `${headPath(path)}.tmp`;
  Deno.writeTextFileSync(tmp, `${JSON.stringify(head)}\n`, { mode: 0o600 });
  Deno.chmodSync(tmp, 0o600);
  Deno.renameSync(tmp, headPath(path));
}

/** The last non-empty line of a file (reads at most its last 64 KiB). */
export function lastLine(path: string): string | undefined {
  let f: Deno.FsFile;
  try {
    f = Deno.openSync(path, { read: true });
  } catch {
    return undefined;
  }
  try {
    const size = f.statSync().size;
    const n = Math.min(size, 64 * 1024);
    f.seekSync(size - n, Deno.SeekMode.Start);
    const buf = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const got = f.readSync(buf.subarray(off));
      if (got === null) break;
      off += got;
    }
    const lines = new TextDecoder().decode(buf.subarray(0, off)).split("\n").filter((l) => l);
    return lines.at(-1);
  } finally {
    f.close();
  }
}

/** The `seq` of a file's first line, if it is a chained line (reads at most 64 KiB). */
function firstSeq(path: string): number | undefined {
  try {
    using f = Deno.openSync(path, { read: true });
    const buf = new Uint8Array(64 * 1024);
    const n = f.readSync(buf) ?? 0;
    const text = new TextDecoder().decode(buf.subarray(0, n));
    const seq = (JSON.parse(text.slice(0, text.indexOf("\n"))) as { seq?: unknown }).seq;
    return Number.isSafeInteger(seq) ? seq as number : undefined;
  } catch {
    return undefined;
  }
}

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

/** Renames `path` → `path.1` → … → `path.keep` (the oldest falls off). */
export function rotateFiles(path: string, keep: number): void {
  try {
    Deno.removeSync(`${path}.${keep}`);
  } catch { /* not there */ }
  for (let i = keep - 1; i >= 1; i--) {
    try {
      Deno.renameSync(`${path}.${i}`, `${path}.${i + 1}`);
    } catch { /* gap */ }
  }
  try {
    Deno.renameSync(path, `${path}.1`);
  } catch { /* nothing to rotate */ }
}

/** Options for {@linkcode createChainedFile}. */
export interface ChainedFileOptions {
  path: string;
  maxBytes: number;
  keep: number;
  log: Logger;
}

/** A chained log file. `append` is called by one writer at a time. */
export interface ChainedFile {
  /** Chains, writes and records the head; throws on a write error. */
  append(jsonLines: readonly string[]): Promise<void>;
  /** Closes the file and logs the head (the anchor kept outside the file). */
  close(): void;
}

/** Where a chain continues when the gate starts. */
function startHead(path: string, log: Logger): ChainHead {
  const head = readHead(path);
  const last = lastLine(path);
  if (head) {
    // Continue from the recorded head even if the file disagrees: a tail
    // cut or edited while the gate was down stays visible as a break.
    if (last !== undefined && lineHash(last) !== head.hash) {
      log.warn(
        `audit log ${path}: its last line is not the one the gate last wrote; run "gcp-gate audit verify"`,
      );
    }
    return head;
  }
  // No head: a new log (genesis), or one written before the chain (its last
  // line anchors the first chained one).
  if (last === undefined) return { seq: 0, hash: GENESIS, oldest_seq: 1 };
  const seq = (() => {
    try {
      const s = (JSON.parse(last) as { seq?: unknown }).seq;
      return Number.isSafeInteger(s) ? s as number : 0;
    } catch {
      return 0;
    }
  })();
  return { seq, hash: lineHash(last), oldest_seq: 1 };
}

/** Opens (lazily) a chained, rotated file. Created private, never through a symlink. */
export function createChainedFile(options: ChainedFileOptions): ChainedFile {
  const { path, log } = options;
  const encoder = new TextEncoder();
  let file: Deno.FsFile | undefined;
  let size = 0;
  let head: ChainHead | undefined;

  function open(): Deno.FsFile {
    Deno.mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    try {
      // Refuse to follow a symlink: the log must land where the config says.
      if (Deno.lstatSync(path).isSymlink) {
        throw new Error(`${path} is a symlink; remove it`);
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    head ??= startHead(path, log);
    const f = Deno.openSync(path, { append: true, create: true, mode: 0o600 });
    // mode applies only on creation (and through the umask): make sure.
    Deno.chmodSync(path, 0o600);
    size = f.statSync().size;
    return f;
  }

  function rotate(h: ChainHead): ChainHead {
    file?.close();
    file = undefined;
    const droppedOne = (() => {
      try {
        Deno.statSync(`${path}.${options.keep}`);
        return true;
      } catch {
        return false;
      }
    })();
    rotateFiles(path, options.keep);
    log.info(`audit log ${path} rotated; chain head seq ${h.seq} sha256 ${h.hash}`);
    if (!droppedOne) return h;
    // The oldest file fell off: remember where the kept lines start, so a
    // file deleted by hand is told apart from one dropped by rotation.
    return { ...h, oldest_seq: firstSeq(`${path}.${options.keep}`) ?? h.seq + 1 };
  }

  return {
    async append(jsonLines) {
      file ??= open();
      let h = head!;
      let prev = h.hash;
      let seq = h.seq;
      const chained = jsonLines.map((json) => {
        const line = chainLine(json, ++seq, prev);
        prev = lineHash(line);
        return line;
      });
      const data = encoder.encode(chained.join("\n") + "\n");
      // Rotate before a write would pass the limit, so the live file always exists.
      if (size > 0 && size + data.length > options.maxBytes) {
        h = rotate(h);
        file = open();
      }
      let off = 0;
      while (off < data.length) off += await file.write(data.subarray(off));
      size += data.length;
      head = { seq, hash: prev, oldest_seq: h.oldest_seq };
      writeHead(path, head);
    },
    close() {
      file?.close();
      file = undefined;
      if (head && head.seq > 0) {
        log.info(`audit log ${path} closed; chain head seq ${head.seq} sha256 ${head.hash}`);
      }
    },
  };
}
