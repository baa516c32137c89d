/**
 * Walks an audit log's hash chain (gate/audit_file.ts) over all its files,
 * oldest first, and reports the first line that was changed, removed or
 * inserted, and a tail cut short of the head the gate recorded.
 */
import { type ChainHead, GENESIS, lineHash, readHead } from "./audit_file.ts";

/** One line as read from disk. */
export interface LogLine {
  /** File it came from. */
  readonly file: string;
  /** 1-based line number in that file. */
  readonly line: number;
  readonly text: string;
}

/** What {@linkcode verifyChain} found. */
export interface ChainReport {
  /** Lines read (all files). */
  readonly lines: number;
  /** Lines at the start written before the chain existed (not checkable). */
  readonly unchained: number;
  /** `seq` of the first and last chained line, when any. */
  readonly firstSeq: number | undefined;
  readonly lastSeq: number | undefined;
  /** The first break in the chain, one line; undefined when intact. */
  readonly problem: string | undefined;
  /** Things worth knowing that are not a break (no head file, lines newer than the head). */
  readonly notes: readonly string[];
}

interface Parsed extends LogLine {
  readonly seq: number | undefined;
  readonly prev: string | undefined;
  /** False when the line is not JSON or has malformed chain fields. */
  readonly valid: boolean;
  readonly hash: string;
}

function parse(l: LogLine): Parsed {
  let obj: Record<string, unknown> | undefined;
  try {
    const v: unknown = JSON.parse(l.text);
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      obj = v as Record<string, unknown>;
    }
  } catch { /* not JSON */ }
  const seq = obj?.seq;
  const prev = obj?.prev;
  const chained = Number.isSafeInteger(seq) && typeof prev === "string" &&
    /^[0-9a-f]{64}$/.test(prev);
  return {
    ...l,
    seq: chained ? seq as number : undefined,
    prev: chained ? prev as string : undefined,
    // JSON without any chain field: written before the chain (valid only at the start).
    valid: chained || (obj !== undefined && seq === undefined && prev === undefined),
    hash: lineHash(l.text),
  };
}

function where(p: LogLine): string {
  return `${p.file} line ${p.line}`;
}

/** Diagnoses a break between `a` and `b` (the line after `b` helps tell an insertion). */
function diagnose(a: Parsed, b: Parsed, c: Parsed | undefined): string {
  if (c?.prev === a.hash && c.seq === a.seq! + 1) {
    return `${where(b)} was inserted (the line after it continues the chain from ${where(a)})`;
  }
  if (b.seq === a.seq! + 1) {
    return `${
      where(a)
    } (seq ${a.seq}) was changed: its hash is not the "prev" of the line after it`;
  }
  if (b.seq! > a.seq! + 1) {
    const n = b.seq! - a.seq! - 1;
    return `${n} line${n === 1 ? "" : "s"} (seq ${a.seq! + 1}${
      n === 1 ? "" : `–${b.seq! - 1}`
    }) removed between ${where(a)} and ${where(b)}`;
  }
  return `${where(b)} was inserted or moved (seq ${b.seq} after seq ${a.seq})`;
}

/** Checks the tail against the head the gate recorded. */
function checkTail(
  last: Parsed | undefined,
  all: readonly Parsed[],
  head: ChainHead,
  notes: string[],
): string | undefined {
  if (last === undefined) {
    return head.seq > 0
      ? `the log is empty but the gate wrote ${head.seq} lines (head file): all were removed`
      : undefined;
  }
  if (head.seq > last.seq!) {
    const n = head.seq - last.seq!;
    return `truncated: the last ${n} line${n === 1 ? "" : "s"} (seq ${last.seq! + 1}${
      n === 1 ? "" : `–${head.seq}`
    }) the gate wrote are missing after ${where(last)}`;
  }
  const anchor = all.find((p) => p.seq === head.seq);
  if (anchor === undefined || anchor.hash !== head.hash) {
    return `${
      anchor ? where(anchor) : `seq ${head.seq}`
    } is not the line the gate last wrote (head file hash differs)`;
  }
  if (last.seq! > head.seq) {
    notes.push(
      `${
        last.seq! - head.seq
      } line(s) after the recorded head: written since it was read (the gate is running), or appended by someone else`,
    );
  }
  return undefined;
}

/**
 * Verifies one chain. `lines` are every line of the log's files, oldest file
 * first; `head` is what the gate recorded last (undefined: no head file).
 */
export function verifyChain(lines: readonly LogLine[], head: ChainHead | undefined): ChainReport {
  const all = lines.map(parse);
  const notes: string[] = [];
  let unchained = 0;
  let problem: string | undefined;
  let prev: Parsed | undefined;
  let firstSeq: number | undefined;
  for (let i = 0; i < all.length && problem === undefined; i++) {
    const p = all[i]!;
    if (p.seq === undefined) {
      if (prev === undefined && p.valid) {
        unchained++;
        continue;
      }
      problem = `${where(p)} is not a chained audit line: edited or inserted`;
      break;
    }
    if (prev === undefined) {
      firstSeq = p.seq;
      const before = i > 0 ? all[i - 1]!.hash : GENESIS;
      // Without a head file, files dropped by rotation and files deleted by
      // hand look alike: only the head says where the kept lines start.
      const oldest = head?.oldest_seq ?? p.seq;
      if (p.seq === 1 && p.prev !== before) {
        problem = `${where(p)} does not continue from ${
          i > 0 ? where(all[i - 1]!) : "the start of the chain"
        }: a line before it was changed or removed`;
      } else if (p.seq > oldest) {
        problem = `the oldest lines (seq ${oldest}–${p.seq - 1}) are missing before ${
          where(p)
        }: a file was deleted or cut`;
      }
      prev = p;
      continue;
    }
    if (p.prev !== prev.hash || p.seq !== prev.seq! + 1) {
      problem = diagnose(prev, p, all[i + 1]);
      break;
    }
    prev = p;
  }
  if (problem === undefined && head) problem = checkTail(prev, all, head, notes);
  if (!head) notes.push("no head file: a cut-off tail cannot be detected");
  if (unchained > 0) notes.push(`${unchained} line(s) at the start predate the chain`);
  return {
    lines: all.length,
    unchained,
    firstSeq,
    lastSeq: prev?.seq,
    problem,
    notes,
  };
}

/** The files of a log, oldest first (`path.N` … `path.1`, `path`), that exist. */
export function logFiles(path: string): string[] {
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  const base = path.slice(path.lastIndexOf("/") + 1);
  const rotated: number[] = [];
  try {
    for (const e of Deno.readDirSync(dir)) {
      const m = e.isFile && e.name.startsWith(`${base}.`)
        ? /^\d+$/.exec(e.name.slice(base.length + 1))
        : null;
      if (m) rotated.push(Number(m[0]));
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const files = rotated.sort((a, b) => b - a).map((n) => `${path}.${n}`);
  try {
    if (Deno.statSync(path).isFile) files.push(path);
  } catch { /* no live file */ }
  return files;
}

/** Every line of the log's files, oldest first. */
export function readLogLines(path: string): LogLine[] {
  const out: LogLine[] = [];
  for (const file of logFiles(path)) {
    const name = file.slice(file.lastIndexOf("/") + 1);
    const texts = Deno.readTextFileSync(file).split("\n");
    if (texts.at(-1) === "") texts.pop();
    texts.forEach((text, i) => out.push({ file: name, line: i + 1, text }));
  }
  return out;
}

/** Verifies the log at `path` (all its files and its head file). */
export function verifyLog(path: string): ChainReport & { readonly head: boolean } {
  // The head first: lines written after this read are then "newer", not missing.
  const head = readHead(path);
  return { ...verifyChain(readLogLines(path), head), head: head !== undefined };
}
