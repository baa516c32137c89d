/**
 * The audit log: one JSON line per token decision, in a private file on the
 * host (never in the socket directory, which containers mount). Writes are
 * queued and flushed in the background so the request path never waits for
 * the disk; cache hits of dev tokens are counted and summarised once a minute
 * so the log stays small under load. Size-based rotation keeps N old files.
 *
 * The container drives much of what is logged, so (gate/audit_line.ts) every
 * line is bounded, repeated rejections are counted in the same summaries as
 * cache hits, and prod decisions (granted, denied, revoked) are also written
 * to their own file (`<audit_log>.decisions`, same rotation settings) that
 * no junk reaches. Both files are hash-chained (gate/audit_file.ts).
 */
import type { Logger } from "../shared/log.ts";
import { redactValue } from "../shared/redact.ts";
import { type ChainedFile, createChainedFile } from "./audit_file.ts";
import { boundCommand, commandDigest, FOLD_AFTER, foldKey, isProdDecision } from "./audit_line.ts";

export { rotateFiles } from "./audit_file.ts";

export type AuditResult =
  | "granted"
  | "denied"
  | "error"
  | "rate_limited"
  | "revoked"
  | "refused"
  | "waiting"
  | "withdrawn"
  | "ended";

/** One decision. Never a token: only facts about it. */
export interface AuditEntry {
  readonly endpoint: string;
  readonly level: "dev" | "prod";
  readonly result: AuditResult;
  /** The profile whose socket the request arrived on (absent without profiles). */
  readonly profile?: string | undefined;
  readonly email?: string | undefined;
  readonly scopes?: readonly string[] | undefined;
  readonly ttl_seconds?: number | undefined;
  /** First 8 characters of a session id: enough to correlate, useless to replay. */
  readonly session?: string | undefined;
  readonly project?: string | undefined;
  readonly command?: readonly string[] | undefined;
  readonly reason?: string | undefined;
  readonly audience?: string | undefined;
  readonly approval_id?: string | undefined;
  /** The code with-prod printed for the human to match (not a secret). */
  readonly approval_code?: string | undefined;
  /** Where the caller says it runs ("build-vm-3 via ssh"; advisory, ≤ 72 characters). */
  readonly caller_host?: string | undefined;
  readonly approval?: string | undefined;
  /** The Privileged Access Manager grant a prod session uses (full resource name). */
  readonly grant?: string | undefined;
  /** The grant's state, on lines about the grant itself. */
  readonly grant_state?: string | undefined;
  /** A caller with-prod's proxy refused (result "refused"): its pid, command and why. */
  readonly caller_pid?: number | null | undefined;
  readonly caller_command?: string | null | undefined;
  readonly refusal?: string | undefined;
  readonly error?: string | undefined;
  readonly code?: string | undefined;
  /** For summary lines: cache hits served since the previous summary. */
  readonly cache_hits?: number | undefined;
  /** For summary lines: repeats of a rejection counted, not written, since the previous summary. */
  readonly repeats?: number | undefined;
  readonly period_seconds?: number | undefined;
}

export interface AuditLog {
  /** Queues `entry` (stamped with the time); never blocks, never throws. */
  record(entry: AuditEntry): void;
  /** Counts a cache hit; summarised once per period instead of one line each. */
  countHit(endpoint: string, level: "dev" | "prod"): void;
  /** Writes everything queued so far. */
  flush(): Promise<void>;
  /** Emits the pending summary, flushes and closes the file. */
  close(): Promise<void>;
}

/** Options for {@linkcode createAuditLog}. */
export interface AuditLogOptions {
  path: string;
  maxBytes: number;
  keep: number;
  log: Logger;
  /** Summary period for counted cache hits (ms). */
  summaryMs?: number;
  now?: () => Date;
  /** Most queued lines; beyond it lines are dropped (and the drop is logged). */
  maxQueue?: number;
}

/** The decisions file of an audit log. */
export function decisionsPath(path: string): string {
  return `${path}.decisions`;
}

/** One queued line: its JSON (chain fields are added per file), and its decisions-file form. */
interface Queued {
  json: string;
  decision: string | undefined;
}

/** A queued line's JSON and decisions-file form (redacted, command bounded or digested). */
function encodeLine(obj: Record<string, unknown>, isDecision: boolean): Queued {
  const { command, ...rest } = obj;
  const cmd = Array.isArray(command) ? command as string[] : undefined;
  const json = JSON.stringify(redactValue(cmd ? { ...rest, ...boundCommand(cmd) } : obj));
  let decision: string | undefined;
  if (isDecision) {
    // Approvals and denials keep their (bounded) command in the decisions
    // file: each took a human, or a timeout nobody answered (one pending
    // request at a time, each waits its full timeout). A caller that hung up
    // is "withdrawn", not a decision. Anything else there: size and hash.
    decision = cmd && obj.result !== "granted" && obj.result !== "denied"
      ? JSON.stringify(redactValue({ ...rest, ...commandDigest(cmd) }))
      : json;
  }
  return { json, decision };
}

/** The period's summary lines: cache hits per endpoint, and folded repeats past FOLD_AFTER. */
function summaryLines(
  hits: ReadonlyMap<string, number>,
  repeats: ReadonlyMap<string, { entry: AuditEntry; n: number }>,
  at: { time: Date; periodSeconds: number },
): Record<string, unknown>[] {
  const time = at.time.toISOString();
  const out: Record<string, unknown>[] = [];
  for (const [key, n] of hits) {
    const [level, endpoint] = key.split(" ", 2) as [string, string];
    out.push({
      time,
      endpoint,
      level,
      result: "granted",
      cache_hits: n,
      period_seconds: at.periodSeconds,
    });
  }
  for (const { entry, n } of repeats.values()) {
    if (n <= FOLD_AFTER) continue;
    out.push({
      time,
      endpoint: entry.endpoint,
      level: entry.level,
      result: entry.result,
      ...(entry.code === undefined ? {} : { code: entry.code }),
      repeats: n - FOLD_AFTER,
      period_seconds: at.periodSeconds,
    });
  }
  return out;
}

/** The bounded write queue in front of the two files. */
interface WriteQueue {
  /** Queues a line; past `maxQueue` a non-decision is counted as dropped instead. */
  push(obj: Record<string, unknown>): void;
  /** Resolves once everything queued so far is written. */
  flush(): Promise<void>;
}

function createWriteQueue(
  files: { main: ChainedFile; decisions: ChainedFile },
  opts: { path: string; log: Logger; now: () => Date; maxQueue: number },
): WriteQueue {
  const { log, now } = opts;
  let queue: Queued[] = [];
  let dropped = 0;
  let writing: Promise<void> | undefined;
  let failed = false;

  async function write(file: ChainedFile, lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    try {
      await file.append(lines);
      failed = false;
    } catch (err) {
      // Log once per failure streak, not once per line.
      if (!failed) log.error(`cannot write the audit log ${opts.path}: ${(err as Error).message}`);
      failed = true;
    }
  }

  async function drain(): Promise<void> {
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      const main = batch.map((q) => q.json);
      if (dropped > 0) {
        main.push(JSON.stringify({ time: now().toISOString(), audit_dropped: dropped }));
        dropped = 0;
      }
      await write(files.main, main);
      await write(files.decisions, batch.flatMap((q) => q.decision ?? []));
    }
  }

  function kick(): void {
    // A line queued after drain() saw an empty queue but before this
    // finally ran would wait for the next record: look again.
    writing ??= drain().finally(() => {
      writing = undefined;
      if (queue.length > 0) kick();
    });
  }

  return {
    push(obj) {
      const isDecision = isProdDecision(obj);
      // Prod decisions are never dropped: each took a human or a rate-limited ask, so they are few.
      if (queue.length >= opts.maxQueue && !isDecision) {
        dropped++;
        return;
      }
      queue.push(encodeLine(obj, isDecision));
      kick();
    },
    async flush() {
      while (writing || queue.length > 0) {
        kick();
        await writing;
      }
    },
  };
}

/** Creates the audit log writer. The files and their directory are created private. */
export function createAuditLog(options: AuditLogOptions): AuditLog {
  const { path, log } = options;
  const now = options.now ?? (() => new Date());
  const files = {
    main: createChainedFile({ path, maxBytes: options.maxBytes, keep: options.keep, log }),
    decisions: createChainedFile({
      path: decisionsPath(path),
      maxBytes: options.maxBytes,
      keep: options.keep,
      log,
    }),
  };
  const queue = createWriteQueue(files, {
    path,
    log,
    now,
    maxQueue: options.maxQueue ?? 10_000,
  });
  const hits = new Map<string, number>();
  /** Rejections per fold key this period: written in full up to FOLD_AFTER, then counted. */
  const repeats = new Map<string, { entry: AuditEntry; n: number }>();
  let periodStart = now().getTime();

  function summarise(): void {
    const t = now();
    const periodSeconds = Math.round((t.getTime() - periodStart) / 1000);
    periodStart = t.getTime();
    for (const line of summaryLines(hits, repeats, { time: t, periodSeconds })) queue.push(line);
    hits.clear();
    repeats.clear();
  }

  const timer = setInterval(() => {
    if (hits.size > 0 || repeats.size > 0) summarise();
  }, options.summaryMs ?? 60_000);
  // The summary timer must not keep a stopping gate alive.
  Deno.unrefTimer(timer);

  return {
    record(entry) {
      const key = foldKey(entry);
      if (key !== undefined) {
        const r = repeats.get(key) ?? { entry, n: 0 };
        r.n++;
        repeats.set(key, r);
        if (r.n > FOLD_AFTER) return;
      }
      queue.push({ time: now().toISOString(), ...entry });
    },
    countHit(endpoint, level) {
      const key = `${level} ${endpoint}`;
      hits.set(key, (hits.get(key) ?? 0) + 1);
    },
    flush: () => queue.flush(),
    async close() {
      clearInterval(timer);
      if (hits.size > 0 || repeats.size > 0) summarise();
      await queue.flush();
      files.main.close();
      files.decisions.close();
    },
  };
}
