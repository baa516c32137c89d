/**
 * Prod sessions, in memory only: one approval opens a session of bounded life
 * whose id lets the caller refresh prod tokens without asking the human again.
 * The id is 256 random bits. Lookups find candidates by an 8-character prefix
 * (a Map lookup, which is not constant-time: timing may reveal whether a
 * guessed prefix exists, at most 48 of the 256 bits) and then compare the
 * full id in constant time, so the remaining 208 bits leak nothing.
 */
import { GateError } from "../shared/errors.ts";
import { constantTimeEqual } from "../shared/http.ts";

export interface Session {
  readonly id: string;
  /** First 8 characters: for the audit log and messages, never enough to use. */
  readonly prefix: string;
  readonly email: string;
  readonly project: string | undefined;
  readonly scopes: readonly string[];
  readonly command: readonly string[] | undefined;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export type NewSession = Omit<Session, "id" | "prefix" | "createdAt" | "expiresAt">;

export interface SessionStore {
  create(info: NewSession, ttlSeconds: number): Session;
  /** The live session with this id, if any. */
  find(id: string): Session | undefined;
  /** Ends the session now; returns it, or undefined when unknown. */
  revoke(id: string): Session | undefined;
  readonly size: number;
}

/** Options for {@linkcode createSessionStore}. */
export interface SessionStoreOptions {
  now?: () => number;
  /** Most live sessions (each stands for one human approval). */
  maxSessions?: number;
  randomBytes?: (n: number) => Uint8Array;
}

const ID_RE = /^[A-Za-z0-9_-]{43}$/;
const PREFIX = 8;

/** Refuses anything that is not shaped like a session id (before any lookup). */
export function validateSessionId(raw: string | null, name = "id"): string {
  if (raw === null || raw === "") {
    throw new GateError("bad_request", `${name}: a session id is required`);
  }
  if (!ID_RE.test(raw)) {
    throw new GateError(
      "bad_request",
      `${name}: not a session id (43 characters of base64url, as POST /session returned)`,
    );
  }
  return raw;
}

function b64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

/** Creates the store. */
export function createSessionStore(options: SessionStoreOptions = {}): SessionStore {
  const now = options.now ?? Date.now;
  const max = options.maxSessions ?? 64;
  const random = options.randomBytes ??
    ((n: number) => crypto.getRandomValues(new Uint8Array(n)));
  // Indexed by prefix (not constant-time, see above), then compared in full in constant time.
  const byPrefix = new Map<string, Session[]>();
  let count = 0;

  function prune(): void {
    const t = now();
    for (const [p, list] of byPrefix) {
      const live = list.filter((s) => s.expiresAt > t);
      count -= list.length - live.length;
      if (live.length === 0) byPrefix.delete(p);
      else byPrefix.set(p, live);
    }
  }

  function locate(id: string): { list: Session[]; index: number } | undefined {
    const list = byPrefix.get(id.slice(0, PREFIX));
    if (!list) return undefined;
    let index = -1;
    // Visit every candidate: no early exit on a match.
    for (let i = 0; i < list.length; i++) {
      if (constantTimeEqual(list[i]!.id, id)) index = i;
    }
    return index < 0 ? undefined : { list, index };
  }

  return {
    create(info, ttlSeconds) {
      prune();
      if (count >= max) {
        throw new GateError(
          "rate_limited",
          `${max} prod sessions are open; end one (with-prod ends its own, or DELETE /session) before opening another`,
          { retryAfterSeconds: 60 },
        );
      }
      const id = b64url(random(32));
      const t = now();
      const s: Session = {
        ...info,
        id,
        prefix: id.slice(0, PREFIX),
        createdAt: t,
        expiresAt: t + ttlSeconds * 1000,
      };
      const list = byPrefix.get(s.prefix) ?? [];
      list.push(s);
      byPrefix.set(s.prefix, list);
      count++;
      return s;
    },
    find(id) {
      const hit = locate(id);
      const s = hit?.list[hit.index];
      return s && s.expiresAt > now() ? s : undefined;
    },
    revoke(id) {
      const hit = locate(id);
      if (!hit) return undefined;
      const [s] = hit.list.splice(hit.index, 1);
      count--;
      if (hit.list.length === 0) byPrefix.delete(id.slice(0, PREFIX));
      return s && s.expiresAt > now() ? s : undefined;
    },
    get size() {
      prune();
      return count;
    },
  };
}
