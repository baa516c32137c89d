/**
 * Reporting the temporary proxy's refusals: a line on the user's terminal
 * and a report to the gate (POST /session/refusal, audited on the host).
 *
 * Bounded: any local process can open connections as fast as it likes, and
 * each report is a terminal line, a gate request and (for a caller of our
 * own uid) a scan of every process to name it. A token bucket lets the
 * first few through at once, then one per interval; the refusals in between
 * are counted and the count rides on the next report. Connections that
 * closed before they could be checked are not refusals of anyone: they are
 * logged at debug level only (wrk's probe connection is one).
 */
import type { Logger } from "../shared/log.ts";
import type { RefusalReport } from "../shared/protocol.ts";
import type { OwnerVerdict } from "./pid_owner.ts";

/** Options for {@linkcode createRefusalReporter}. */
export interface RefusalReporterOptions {
  readonly log: Logger;
  /** Sends one report to the gate (fire and forget: the refusal stands either way). */
  readonly send: (report: RefusalReport) => void;
  /** Names the process holding a socket inode (slow: only for reported refusals). */
  readonly name: (inode: string) => { pid: number; comm: string | undefined } | undefined;
  /** Reports allowed at once (default 5). */
  readonly burst?: number;
  /** Then one per this many ms (default 10 s). */
  readonly intervalMs?: number;
  readonly now?: () => number;
}

/** Reports refusals, rate-limited. */
export interface RefusalReporter {
  /** A refused (or vanished) connection from `clientPort`. */
  refused(verdict: OwnerVerdict, clientPort: number): void;
  /** Refusals not reported so far (folded into the next report). */
  readonly pending: number;
}

/** Creates a rate-limited {@linkcode RefusalReporter}. */
export function createRefusalReporter(options: RefusalReporterOptions): RefusalReporter {
  const now = options.now ?? Date.now;
  const burst = options.burst ?? 5;
  const intervalMs = options.intervalMs ?? 10_000;
  let tokens = burst;
  let last = now();
  let unreported = 0;

  function take(): boolean {
    const t = now();
    tokens = Math.min(burst, tokens + (t - last) / intervalMs);
    last = t;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  }

  return {
    refused(verdict, clientPort) {
      if (verdict.kind === "gone") {
        options.log.debug("a connection closed before it could be checked; not a refusal", {
          client_port: clientPort,
        });
        return;
      }
      if (!take()) {
        unreported++;
        return;
      }
      // Only our own uid's callers need the full scan to be named; another
      // uid is named by its uid (the socket's owner).
      const named = verdict.kind === "outside_tree" && verdict.inode !== undefined
        ? options.name(verdict.inode)
        : undefined;
      if (verdict.kind === "outside_tree" && !named) {
        // No process holds the socket any more: the caller closed it.
        tokens += 1;
        options.log.debug("a connection closed while it was checked; not a refusal", {
          client_port: clientPort,
        });
        return;
      }
      const pid = verdict.pid ?? named?.pid;
      const comm = verdict.comm ?? named?.comm;
      const more = unreported;
      unreported = 0;
      options.log.warn("audit: refused a connection to the prod metadata proxy", {
        event: "prod_proxy_refused",
        uid: verdict.uid,
        pid,
        comm,
        client_port: clientPort,
        reason: verdict.reason,
        ...(more > 0 ? { refused_unreported_before: more } : {}),
      });
      options.send({
        pid: pid ?? null,
        command: comm ?? null,
        reason: more > 0
          ? `${verdict.reason}; and ${more} more refused since the last report`
          : verdict.reason,
      });
    },
    get pending() {
      return unreported;
    },
  };
}
