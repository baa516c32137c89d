/**
 * What a prod session holds besides its record in the session store: the
 * request reason Google records for its calls, and — with a prod access
 * provider (a PAM grant) — its handle, released when the session is revoked,
 * expires, or the gate stops. gate/prod.ts calls this at four points: after
 * approval (`open`), per token (`get`), at the session's end (`end`), at
 * shutdown (`close`).
 */
import type { Logger } from "../shared/log.ts";
import type { ProdAccessHandle, ProdAccessProvider, ReleaseReason } from "./pam/provider.ts";
import { requestReasonFor } from "./request_reason.ts";

/** One session's access. */
export interface SessionAccess {
  /** Sent as X-Goog-Request-Reason (and handed to with-prod's child). */
  readonly reason: string;
  readonly handle: ProdAccessHandle | undefined;
}

/** What {@linkcode SessionAccessTable.open} needs. */
export interface OpenAccessOptions {
  /** The session id's prefix (the table's key). */
  readonly prefix: string;
  /** ms since epoch: the access is released then if nothing ended it before. */
  readonly expiresAt: number;
  readonly approvalId: string;
  readonly email: string;
  readonly reason: string | undefined;
  readonly code: string | undefined;
  readonly command: readonly string[] | undefined;
  readonly signal: AbortSignal;
  /** Told what the access still waits for (also logged). */
  readonly onProgress?: (message: string) => void;
}

export interface SessionAccessTable {
  /** Acquires the provider's access (may wait long; throws its error) and keeps it. */
  open(o: OpenAccessOptions): Promise<SessionAccess>;
  get(prefix: string): SessionAccess | undefined;
  /** Ends a session's access; the provider's release runs in the background. */
  end(prefix: string, why: ReleaseReason): void;
  /** Ends every session's access and waits for the releases, within `timeoutMs`. */
  close(timeoutMs: number): Promise<void>;
}

/** Dependencies of {@linkcode createSessionAccessTable}. */
export interface SessionAccessDeps {
  provider: ProdAccessProvider | undefined;
  log: Logger | undefined;
  now: () => number;
}

/** Creates the table (bounded like the session store: an entry ends with its session). */
export function createSessionAccessTable(deps: SessionAccessDeps): SessionAccessTable {
  const entries = new Map<string, SessionAccess & { timer: ReturnType<typeof setTimeout> }>();
  const releases = new Set<Promise<void>>();

  function end(prefix: string, why: ReleaseReason): void {
    const x = entries.get(prefix);
    if (!x) return;
    entries.delete(prefix);
    clearTimeout(x.timer);
    if (x.handle && deps.provider) {
      const p: Promise<void> = deps.provider.release(x.handle, why).catch((err) =>
        deps.log?.warn("releasing prod access failed", { error: String(err) })
      ).finally(() => releases.delete(p));
      releases.add(p);
    }
  }

  return {
    async open(o) {
      const reason = requestReasonFor(o.approvalId, o.reason);
      const handle = deps.provider
        ? await deps.provider.acquire({
          approvalId: o.approvalId,
          email: o.email,
          reason: o.reason,
          code: o.code,
          command: o.command,
          requestReason: reason,
          signal: o.signal,
          onProgress: (m) => {
            deps.log?.info(m, { approval_id: o.approvalId });
            o.onProgress?.(m);
          },
        })
        : undefined;
      // An expired session ends its upstream access too (not only a revoked one).
      const timer = setTimeout(() => end(o.prefix, "expired"), o.expiresAt - deps.now());
      Deno.unrefTimer(timer);
      const access = { reason, handle };
      entries.set(o.prefix, { ...access, timer });
      return access;
    },
    get: (prefix) => entries.get(prefix),
    end,
    async close(timeoutMs) {
      for (const prefix of [...entries.keys()]) end(prefix, "shutdown");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise((r) => (timer = setTimeout(r, timeoutMs)));
      try {
        await Promise.race([
          Promise.all([...releases, deps.provider?.close(timeoutMs)]),
          late,
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
