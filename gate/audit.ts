/**
 * The audit log: one JSON line per token decision, in a private file on the
 * host (never in the socket directory, which containers mount). Writes are
 * queued and flushed in the background so the request path never waits for
 * the disk; cache hits of dev tokens are counted and summarised once a minute
 * so the log stays small under load. Size-based rotation keeps N old files.
 */
import type { Logger } from "../shared/log.ts";
import { redactValue } from "../shared/redact.ts";

export type AuditResult = "granted" | "denied" | "error" | "rate_limited" | "revoked" | "refused";

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
  readonly approval?: string | undefined;
  /** A caller with-prod's proxy refused (result "refused"): its pid, command and why. */
  readonly caller_pid?: number | null | undefined;
  readonly caller_command?: string | null | undefined;
  readonly refusal?: string | undefined;
  readonly error?: string | undefined;
  readonly code?: string | undefined;
  /** For summary lines: cache hits served since the previous summary. */
  readonly cache_hits?: number | undefined;
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

/** Creates the audit log writer. The file and its directory are created private. */
export function createAuditLog(options: AuditLogOptions): AuditLog {
  const { path, log } = options;
  const now = options.now ?? (() => new Date());
  const maxQueue = options.maxQueue ?? 10_000;
  const encoder = new TextEncoder();
  let queue: string[] = [];
  let dropped = 0;
  let file: Deno.FsFile | undefined;
  let size = 0;
  let writing: Promise<void> | undefined;
  let failed = false;
  const hits = new Map<string, number>();
  let periodStart = now().getTime();

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
    const f = Deno.openSync(path, { append: true, create: true, mode: 0o600 });
    // mode applies only on creation (and through the umask): make sure.
    Deno.chmodSync(path, 0o600);
    size = f.statSync().size;
    return f;
  }

  async function drain(): Promise<void> {
    while (queue.length > 0) {
      const lines = queue;
      queue = [];
      if (dropped > 0) {
        lines.push(JSON.stringify({ time: now().toISOString(), audit_dropped: dropped }));
        dropped = 0;
      }
      try {
        file ??= open();
        const data = encoder.encode(lines.join("\n") + "\n");
        // Rotate before a write would pass the limit, so the live file always exists.
        if (size > 0 && size + data.length > options.maxBytes) {
          file.close();
          file = undefined;
          rotateFiles(path, options.keep);
          file = open();
        }
        let off = 0;
        while (off < data.length) off += await file.write(data.subarray(off));
        size += data.length;
        failed = false;
      } catch (err) {
        file?.close();
        file = undefined;
        // Log once per failure streak, not once per line.
        if (!failed) log.error(`cannot write the audit log ${path}: ${(err as Error).message}`);
        failed = true;
      }
    }
  }

  function kick(): void {
    writing ??= drain().finally(() => (writing = undefined));
  }

  function push(obj: Record<string, unknown>): void {
    if (queue.length >= maxQueue) {
      dropped++;
      return;
    }
    queue.push(JSON.stringify(redactValue(obj)));
    kick();
  }

  function summarise(): void {
    const t = now();
    const period = Math.round((t.getTime() - periodStart) / 1000);
    periodStart = t.getTime();
    for (const [key, n] of hits) {
      const [level, endpoint] = key.split(" ", 2) as [string, string];
      push({
        time: t.toISOString(),
        endpoint,
        level,
        result: "granted",
        cache_hits: n,
        period_seconds: period,
      });
    }
    hits.clear();
  }

  const timer = setInterval(() => {
    if (hits.size > 0) summarise();
  }, options.summaryMs ?? 60_000);
  // The summary timer must not keep a stopping gate alive.
  Deno.unrefTimer(timer);

  return {
    record(entry) {
      push({ time: now().toISOString(), ...entry });
    },
    countHit(endpoint, level) {
      const key = `${level} ${endpoint}`;
      hits.set(key, (hits.get(key) ?? 0) + 1);
    },
    async flush() {
      while (writing || queue.length > 0) {
        kick();
        await writing;
      }
    },
    async close() {
      clearInterval(timer);
      if (hits.size > 0) summarise();
      await this.flush();
      file?.close();
      file = undefined;
    },
  };
}
