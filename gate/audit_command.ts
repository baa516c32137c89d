/**
 * `gcp-gate audit [--since 1h] [--result denied] [--session <prefix>] [--json] [--follow]`
 * and `gcp-gate audit verify [--json]`: read and check the audit log. They
 * only read the audit directory (the launcher grants nothing else for them;
 * scripts/resolve.ts).
 *
 * Exit codes: 0 done (verify: every chain intact, or no log yet); 1 verify
 * found a break, or the viewer found no log; 2 usage or config error.
 */
import { printOut } from "../shared/cli.ts";
import type { Invocation } from "../shared/config.ts";
import { EXIT, GateError } from "../shared/errors.ts";
import type { Logger } from "../shared/log.ts";
import { decisionsPath } from "./audit.ts";
import {
  type AuditFilter,
  type AuditRecord,
  formatRecords,
  matches,
  parseResults,
  parseSince,
} from "./audit_view.ts";
import { logFiles, type LogLine, readLogLines, verifyLog } from "./audit_verify.ts";

/** Dependencies of the audit commands (real ones by default). */
export interface AuditCommandDeps {
  out: (text: string) => void;
  now: () => number;
  /** Sleeps between `--follow` polls; resolves false to stop following. */
  wait: (ms: number) => Promise<boolean>;
  /** Whether to colour prod decisions (a terminal, and NO_COLOR unset). */
  color: () => boolean;
}

const REAL: AuditCommandDeps = {
  out: printOut,
  now: Date.now,
  wait: (ms) => new Promise((r) => setTimeout(() => r(true), ms)),
  color: () => Deno.stdout.isTerminal() && !Deno.noColor,
};

const FOLLOW_POLL_MS = 500;

function parseRecord(text: string): AuditRecord {
  try {
    const v: unknown = JSON.parse(text);
    if (v !== null && typeof v === "object" && !Array.isArray(v)) return v as AuditRecord;
  } catch { /* shown as unreadable */ }
  return { result: "unreadable", endpoint: "(not a JSON object)" };
}

/**
 * The lines to show, oldest first: the main log, preceded by the prod
 * decisions that rotation has already dropped from it (the decisions file
 * keeps them longer).
 */
function collect(path: string): LogLine[] {
  const main = readLogLines(path);
  const firstTime = main.length > 0 ? String(parseRecord(main[0]!.text).time ?? "") : undefined;
  const older = readLogLines(decisionsPath(path)).filter((l) =>
    firstTime === undefined || String(parseRecord(l.text).time ?? "") < firstTime
  );
  return [...older, ...main];
}

function filterFrom(inv: Invocation, now: number): AuditFilter {
  const { since, result, session } = inv.extras;
  return {
    sinceMs: typeof since === "string" ? parseSince(since, now) : undefined,
    results: typeof result === "string" ? parseResults(result) : undefined,
    session: typeof session === "string" ? session : undefined,
  };
}

function show(
  lines: readonly LogLine[],
  filter: AuditFilter,
  inv: Invocation,
  deps: AuditCommandDeps,
): void {
  const picked = lines.filter((l) => matches(parseRecord(l.text), filter));
  if (picked.length === 0) return;
  const text = inv.extras.json === true
    ? picked.map((l) => l.text)
    : formatRecords(picked.map((l) => parseRecord(l.text)), deps.color());
  deps.out(text.join("\n"));
}

/** Reads what was appended to the live file since `state`; follows a rotation. */
function readNew(path: string, state: { ino: number | null; offset: number }): LogLine[] {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(path);
  } catch {
    return [];
  }
  const chunks: string[] = [];
  const readFrom = (file: string, offset: number): number => {
    using f = Deno.openSync(file, { read: true });
    const size = f.statSync().size;
    if (size <= offset) return offset;
    f.seekSync(offset, Deno.SeekMode.Start);
    const buf = new Uint8Array(size - offset);
    let got = 0;
    while (got < buf.length) {
      const n = f.readSync(buf.subarray(got));
      if (n === null) break;
      got += n;
    }
    // Only whole lines: a partial last line is read again next time.
    const text = new TextDecoder().decode(buf.subarray(0, got));
    const end = text.lastIndexOf("\n") + 1;
    chunks.push(text.slice(0, end));
    return offset + new TextEncoder().encode(text.slice(0, end)).length;
  };
  if (st.ino !== state.ino || st.size < state.offset) {
    // Rotated: finish the old file (now `.1`), then start the new one.
    try {
      if (state.ino !== null && Deno.statSync(`${path}.1`).ino === state.ino) {
        readFrom(`${path}.1`, state.offset);
      }
    } catch { /* gone */ }
    state.ino = st.ino;
    state.offset = 0;
  }
  state.offset = readFrom(path, state.offset);
  const name = path.slice(path.lastIndexOf("/") + 1);
  return chunks.join("").split("\n").filter((t) => t !== "").map((text) => ({
    file: name,
    line: 0,
    text,
  }));
}

async function viewCommand(inv: Invocation, deps: AuditCommandDeps): Promise<number> {
  const path = inv.config.audit_log;
  const filter = filterFrom(inv, deps.now());
  const state = { ino: null as number | null, offset: 0 };
  try {
    const st = Deno.statSync(path);
    state.ino = st.ino;
    state.offset = st.size;
  } catch { /* no live file yet */ }
  const lines = collect(path);
  if (lines.length === 0 && inv.extras.follow !== true) {
    throw new GateError(
      "not_found",
      `no audit log at ${path} yet (it is written by the running gate)`,
    );
  }
  show(lines, filter, inv, deps);
  if (inv.extras.follow !== true) return EXIT.OK;
  while (await deps.wait(FOLLOW_POLL_MS)) show(readNew(path, state), filter, inv, deps);
  return EXIT.OK;
}

function verifyCommand(inv: Invocation, deps: AuditCommandDeps): number {
  const path = inv.config.audit_log;
  let ok = true;
  const reports = [path, decisionsPath(path)].map((log) => {
    const files = logFiles(log).length;
    const r = verifyLog(log);
    if (r.problem !== undefined) ok = false;
    return { log, files, ...r };
  });
  if (reports.every((r) => r.lines === 0 && !r.head)) {
    deps.out(`no audit log at ${path} yet: nothing to verify`);
    return EXIT.OK;
  }
  if (inv.extras.json === true) {
    deps.out(JSON.stringify({
      ok,
      logs: reports.map((r) => ({
        log: r.log,
        ok: r.problem === undefined,
        files: r.files,
        lines: r.lines,
        first_seq: r.firstSeq ?? null,
        last_seq: r.lastSeq ?? null,
        problem: r.problem ?? null,
        notes: r.notes,
      })),
    }));
  } else {
    for (const r of reports) {
      const name = r.log.slice(r.log.lastIndexOf("/") + 1);
      const span = r.firstSeq === undefined ? "" : `, seq ${r.firstSeq}–${r.lastSeq}`;
      deps.out(
        r.problem === undefined
          ? `${name}: intact — ${r.lines} lines in ${r.files} file(s)${span}${
            r.head ? ", ends at the recorded head" : ""
          }`
          : `${name}: BROKEN — ${r.problem}`,
      );
      for (const n of r.notes) deps.out(`  note: ${n}`);
    }
  }
  return ok ? EXIT.OK : EXIT.FAILURE;
}

/** `gcp-gate audit …`: the viewer, or `verify`. */
export async function auditCommand(
  inv: Invocation,
  args: readonly string[],
  _log: Logger,
  deps: AuditCommandDeps = REAL,
): Promise<number> {
  if (args[0] === "verify" && args.length === 1) return verifyCommand(inv, deps);
  if (args.length > 0) {
    throw new GateError(
      "usage",
      `gcp-gate audit takes no argument ${
        JSON.stringify(args[0]!.slice(0, 40))
      }; did you mean "gcp-gate audit verify"?`,
    );
  }
  return await viewCommand(inv, deps);
}
