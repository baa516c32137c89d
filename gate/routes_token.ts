/**
 * `GET /token`: dev tokens (the hot path of every proxy refresh), session
 * tokens and one-off prod tokens.
 */
import { GateError } from "../shared/errors.ts";
import { sanitizeMessage } from "../shared/redact.ts";
import type { AuditEntry } from "./audit.ts";
import { allowOnly, parseIntParam, parseScopes } from "./params.ts";
import {
  approvalSignal,
  type GateState,
  MAX_CACHED_QUERIES,
  type RouteContext,
  tokenBody,
} from "./routes_context.ts";
import { validateSessionId } from "./sessions.ts";
import type { DevTokenRequest } from "./tokens.ts";
import type { GateRequest } from "./server.ts";

/** `GET /token`: dispatches on `level` and `session`; a known dev query goes straight to the cache. */
export function getToken(req: GateRequest, ctx: RouteContext): Response | Promise<Response> {
  const { gate, url, signal } = ctx;
  if (url.search === "" || gate.devQueries.has(url.search)) return devToken(req, ctx);
  const q = url.searchParams;
  allowOnly(q, ["scopes", "ttl_seconds", "level", "session"]);
  const level = q.get("level");
  if (level !== null && level !== "dev" && level !== "prod") {
    throw new GateError(
      "bad_request",
      `level must be dev or prod, got ${JSON.stringify(level.slice(0, 20))}`,
    );
  }
  const session = q.get("session");
  if (session !== null) {
    if (level === "dev") {
      throw new GateError("bad_request", "session tokens are prod tokens: drop level=dev");
    }
    return sessionToken(gate, { session, q, signal: signal() });
  }
  if (level === "prod") {
    const scopes = parseScopes(q.get("scopes"));
    const ttl = parseIntParam(
      "ttl_seconds",
      q.get("ttl_seconds"),
      gate.ttlRange,
      gate.ttlRange.max,
    );
    return gate.deps.prod.oneOffToken({ scopes, ttlSeconds: ttl }, approvalSignal(gate, signal()))
      .then((t) => tokenBody(gate, t));
  }
  return devToken(req, ctx);
}

function sessionToken(
  gate: GateState,
  opts: { session: string; q: URLSearchParams; signal: AbortSignal },
): Promise<Response> {
  const id = validateSessionId(opts.session, "session");
  const scopesRaw = opts.q.get("scopes");
  const ttlRaw = opts.q.get("ttl_seconds");
  return gate.deps.prod.sessionToken(id, {
    scopes: scopesRaw === null ? undefined : parseScopes(scopesRaw),
    ttlSeconds: ttlRaw === null
      ? undefined
      : parseIntParam("ttl_seconds", ttlRaw, gate.ttlRange, gate.ttlRange.max),
  }, opts.signal).then((t) => tokenBody(gate, t));
}

/** A dev token for a routed URL; remembers the raw URL for the hot path. */
function devToken(req: GateRequest, ctx: RouteContext): Response | Promise<Response> {
  const { gate } = ctx;
  const ask = parseDevQuery(gate, ctx.url);
  if (gate.hotUrls.size >= MAX_CACHED_QUERIES) gate.hotUrls.clear();
  gate.hotUrls.set(req.url, ask);
  return answerDev(gate, ask, ctx.signal);
}

/** The hot path: a cached dev token is answered synchronously, with no promise in between. */
export function answerDev(
  gate: GateState,
  ask: DevTokenRequest,
  signalOf: () => AbortSignal,
): Response | Promise<Response> {
  const hit = gate.deps.tokens.peek(ask);
  if (hit) {
    gate.deps.audit.countHit("/token", "dev");
    return tokenBody(gate, hit);
  }
  return mintDevToken(gate, ask, signalOf());
}

function parseDevQuery(gate: GateState, url: URL): DevTokenRequest {
  const known = gate.devQueries.get(url.search);
  if (known) return known;
  const q = url.searchParams;
  allowOnly(q, ["scopes", "ttl_seconds", "level", "session"]);
  const { ttlRange } = gate;
  const ask: DevTokenRequest = {
    scopes: parseScopes(q.get("scopes")),
    ttlSeconds: parseIntParam("ttl_seconds", q.get("ttl_seconds"), ttlRange, ttlRange.max),
  };
  if (gate.devQueries.size >= MAX_CACHED_QUERIES) gate.devQueries.clear();
  gate.devQueries.set(url.search, ask);
  return ask;
}

/**
 * Dev decisions name the engineer like prod ones do. The email is cached
 * after its first lookup; the answer never waits for it, and when it cannot
 * be had the entry is written without it.
 */
function recordWithEmail(gate: GateState, entry: AuditEntry): void {
  gate.deps.identity.email().then(
    (email) => gate.deps.audit.record({ ...entry, email }),
    () => gate.deps.audit.record(entry),
  );
}

async function mintDevToken(
  gate: GateState,
  ask: DevTokenRequest,
  signal: AbortSignal,
): Promise<Response> {
  const { scopes, ttlSeconds: ttl } = ask;
  const { deps } = gate;
  try {
    const t = await deps.tokens.get(ask, signal);
    if (t.cached) deps.audit.countHit("/token", "dev");
    else {
      recordWithEmail(gate, {
        endpoint: "/token",
        level: "dev",
        result: "granted",
        scopes,
        ttl_seconds: ttl,
      });
    }
    return tokenBody(gate, t);
  } catch (err) {
    if (!signal.aborted) {
      // No email lookup here: with broken credentials it would be one more failing call to Google.
      deps.audit.record({
        endpoint: "/token",
        level: "dev",
        result: "error",
        scopes,
        ttl_seconds: ttl,
        error: err instanceof GateError ? sanitizeMessage(err.message, 300) : "internal error",
        code: err instanceof GateError ? err.code : "internal",
      });
    }
    throw err;
  }
}
