/**
 * The gate's HTTP API as a pure `(Request) => Response` handler. Everything
 * that arrives here came from a container and is treated as hostile: every
 * parameter is validated, every size bounded, every error is `{error, code}`.
 */
import { GateError } from "../shared/errors.ts";
import { errorResponse, jsonResponse } from "../shared/http.ts";
import type { Logger } from "../shared/log.ts";
import {
  type HealthResponse,
  type IdentityResponse,
  type IdentityTokenResponse,
  LEASE_HEADER,
  LIMITS,
  type ProjectNumberResponse,
  PROTOCOL_HEADER,
  PROTOCOL_VERSION,
  type TokenResponse,
  type UniverseDomainResponse,
} from "../shared/protocol.ts";
import { sanitizeMessage, stripUnsafeChars } from "../shared/redact.ts";
import type { AuditEntry, AuditLog } from "./audit.ts";
import type { IdentityService } from "./identity.ts";
import { allowOnly, parseIntParam, parseScopes, readJsonBody, validateProject } from "./params.ts";
import { leasedSession } from "./lease.ts";
import type { ProdService } from "./prod.ts";
import { parseProdRequest, parseRefusalReport } from "./prod_request.ts";
import { validateSessionId } from "./sessions.ts";
import type { DevTokenMinter, DevTokenRequest } from "./tokens.ts";

/** Dependencies of {@linkcode createGateHandler}. */
export interface GateHandlerDeps {
  tokens: DevTokenMinter;
  identity: IdentityService;
  /** The dev service account (reported by /identity). */
  serviceAccount: string | undefined;
  prod: ProdService;
  audit: AuditLog;
  log: Logger;
  version: string;
  maxTokenTtlSeconds: number;
  sessionTtlSeconds: number;
  universeDomain: string;
  defaultProject: string | undefined;
  startedAt: number;
  now?: () => number;
  /** Aborts every waiting approval (shutdown). */
  signal?: AbortSignal;
}

/**
 * `signal()` is the client's disconnect signal, made on demand: creating it
 * costs a native op per request, so the cached hot path never asks for it.
 */
type Route = (req: Request, url: URL, signal: () => AbortSignal) => Promise<Response> | Response;

const MAX_AUDIENCE = 2000;
const JSON_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "application/json",
  "cache-control": "no-store",
};

/** Creates the gate's request handler. */
export function createGateHandler(
  deps: GateHandlerDeps,
): (req: Request) => Response | Promise<Response> {
  const now = deps.now ?? Date.now;
  const ttlRange = { min: 60, max: deps.maxTokenTtlSeconds };

  /**
   * Approvals also end when the gate stops (their dialogs close); other
   * requests are left to finish during the drain.
   */
  function approvalSignal(signal: AbortSignal): AbortSignal {
    return deps.signal ? AbortSignal.any([signal, deps.signal]) : signal;
  }

  function tokenBody(t: { token: string; expiresAt: number }): Response {
    const body: TokenResponse = {
      access_token: t.token,
      expires_in: Math.max(0, Math.floor((t.expiresAt - now()) / 1000)),
      token_type: "Bearer",
    };
    // A plain header object keeps Deno.serve on its fast path (hot path of every proxy refresh).
    return new Response(JSON.stringify(body), { headers: JSON_HEADERS });
  }

  /**
   * Raw request URLs already routed to a valid dev-token query: the hot path
   * matches the exact string and skips parsing it again (`new URL` is the
   * largest per-request cost left). Only validated URLs get in, and only so many.
   */
  const hotUrls = new Map<string, DevTokenRequest>();

  /** The hot path: a cached dev token is answered synchronously, with no promise in between. */
  function devToken(
    req: Request,
    url: URL,
    signalOf: () => AbortSignal,
  ): Response | Promise<Response> {
    const ask = parseDevQuery(url);
    if (hotUrls.size >= 256) hotUrls.clear();
    hotUrls.set(req.url, ask);
    return answerDev(ask, signalOf);
  }

  function answerDev(
    ask: DevTokenRequest,
    signalOf: () => AbortSignal,
  ): Response | Promise<Response> {
    const hit = deps.tokens.peek(ask);
    if (hit) {
      deps.audit.countHit("/token", "dev");
      return tokenBody(hit);
    }
    return mintDevToken(ask, signalOf());
  }

  // Proxies ask the same few queries over and over: validate each distinct
  // query string once (only valid ones are kept, and only so many).
  const devQueries = new Map<string, DevTokenRequest>();
  function parseDevQuery(url: URL): DevTokenRequest {
    const known = devQueries.get(url.search);
    if (known) return known;
    const q = url.searchParams;
    allowOnly(q, ["scopes", "ttl_seconds", "level", "session"]);
    const ask: DevTokenRequest = {
      scopes: parseScopes(q.get("scopes")),
      ttlSeconds: parseIntParam("ttl_seconds", q.get("ttl_seconds"), ttlRange, ttlRange.max),
    };
    if (devQueries.size >= 256) devQueries.clear();
    devQueries.set(url.search, ask);
    return ask;
  }

  /**
   * Dev decisions name the engineer like prod ones do. The email is cached
   * after its first lookup; the answer never waits for it, and when it cannot
   * be had the entry is written without it.
   */
  function recordWithEmail(entry: AuditEntry): void {
    deps.identity.email().then(
      (email) => deps.audit.record({ ...entry, email }),
      () => deps.audit.record(entry),
    );
  }

  async function mintDevToken(ask: DevTokenRequest, signal: AbortSignal): Promise<Response> {
    const { scopes, ttlSeconds: ttl } = ask;
    try {
      const t = await deps.tokens.get(ask, signal);
      if (t.cached) deps.audit.countHit("/token", "dev");
      else {
        recordWithEmail({
          endpoint: "/token",
          level: "dev",
          result: "granted",
          scopes,
          ttl_seconds: ttl,
        });
      }
      return tokenBody(t);
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

  const GET: Record<string, Route> = {
    "/token": (req, url, signal) => {
      if (url.search === "" || devQueries.has(url.search)) return devToken(req, url, signal);
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
        const id = validateSessionId(session, "session");
        const scopesRaw = q.get("scopes");
        const ttlRaw = q.get("ttl_seconds");
        return deps.prod.sessionToken(id, {
          scopes: scopesRaw === null ? undefined : parseScopes(scopesRaw),
          ttlSeconds: ttlRaw === null
            ? undefined
            : parseIntParam("ttl_seconds", ttlRaw, ttlRange, ttlRange.max),
        }, signal()).then(tokenBody);
      }
      if (level === "prod") {
        const scopes = parseScopes(q.get("scopes"));
        const ttl = parseIntParam("ttl_seconds", q.get("ttl_seconds"), ttlRange, ttlRange.max);
        return deps.prod.oneOffToken({ scopes, ttlSeconds: ttl }, approvalSignal(signal()))
          .then(tokenBody);
      }
      return devToken(req, url, signal);
    },
    "/identity": async (_req, url, signal) => {
      allowOnly(url.searchParams, []);
      const body: IdentityResponse = {
        email: await deps.identity.email(signal()),
        service_account: deps.serviceAccount ?? null,
      };
      return jsonResponse(body);
    },
    "/project-number": async (_req, url, signal) => {
      allowOnly(url.searchParams, ["project"]);
      const raw = url.searchParams.get("project");
      const project = raw === null || raw === "" ? deps.defaultProject : validateProject(raw);
      if (project === undefined) {
        throw new GateError(
          "bad_request",
          "project: required (the gate has no project_id configured); pass ?project=<id>",
        );
      }
      const body: ProjectNumberResponse = {
        project_id: project,
        project_number: await deps.identity.projectNumber(project, signal()),
      };
      return jsonResponse(body);
    },
    "/universe-domain": (_req, url) => {
      allowOnly(url.searchParams, []);
      const body: UniverseDomainResponse = { universe_domain: deps.universeDomain };
      return jsonResponse(body);
    },
    "/identity-token": async (_req, url, signal) => {
      const q = url.searchParams;
      allowOnly(q, ["audience", "format", "licenses"]);
      const audience = q.get("audience") ?? "";
      if (
        audience === "" || audience.length > MAX_AUDIENCE || stripUnsafeChars(audience) !== audience
      ) {
        throw new GateError(
          "bad_request",
          `audience: required, 1 to ${MAX_AUDIENCE} printable characters`,
        );
      }
      const format = q.get("format") ?? "standard";
      if (format !== "standard" && format !== "full") {
        throw new GateError("bad_request", "format must be standard or full");
      }
      const licenses = q.get("licenses");
      if (licenses !== null && !/^(true|false)$/i.test(licenses)) {
        throw new GateError("bad_request", "licenses must be TRUE or FALSE");
      }
      const t = await deps.identity.idToken(audience, format === "full", signal());
      if (t.cached) deps.audit.countHit("/identity-token", "dev");
      else {
        deps.audit.record({
          endpoint: "/identity-token",
          level: "dev",
          result: "granted",
          audience: sanitizeMessage(audience, 200),
        });
      }
      const body: IdentityTokenResponse = { id_token: t.token };
      return jsonResponse(body);
    },
    "/session": (_req, url) => {
      allowOnly(url.searchParams, ["id"]);
      return jsonResponse(
        deps.prod.describeSession(validateSessionId(url.searchParams.get("id"))),
      );
    },
  };

  const POST: Record<string, Route> = {
    "/session": async (req, url) => {
      allowOnly(url.searchParams, []);
      // No lease, no approval: a session without one could outlive its
      // with-prod (a relay that swallows DELETE keeps it for hours).
      if (req.headers.get(LEASE_HEADER) !== "1") {
        throw new GateError(
          "protocol_mismatch",
          `POST /session needs a session lease (header ${LEASE_HEADER}: 1, as with-prod sends): this gate no longer opens sessions that could outlive their client; install matching gcp-gate versions on host and container`,
        );
      }
      const parsed = parseProdRequest(await readJsonBody(req), {
        maxTtlSeconds: deps.sessionTtlSeconds,
        defaultProject: deps.defaultProject,
      });
      return leasedSession(parsed, { prod: deps.prod, log: deps.log, signal: deps.signal });
    },
    "/session/refusal": async (req, url) => {
      allowOnly(url.searchParams, ["id"]);
      const id = validateSessionId(url.searchParams.get("id"));
      deps.prod.recordRefusal(id, parseRefusalReport(await readJsonBody(req, 2048)));
      return jsonResponse({ status: "recorded" });
    },
  };

  const DELETE: Record<string, Route> = {
    "/session": (_req, url) => {
      allowOnly(url.searchParams, ["id"]);
      deps.prod.revokeSession(validateSessionId(url.searchParams.get("id")), "DELETE /session");
      return jsonResponse({ status: "revoked" });
    },
  };

  const TABLE: Record<string, Record<string, Route>> = { GET, POST, DELETE };
  const PATHS = new Set([...Object.keys(GET), ...Object.keys(POST), ...Object.keys(DELETE)]);

  function allowed(path: string): string[] {
    return Object.keys(TABLE).filter((m) => TABLE[m]![path] !== undefined);
  }

  function route(
    req: Request,
    url: URL,
    signal: () => AbortSignal,
  ): Response | Promise<Response> {
    const path = url.pathname;
    if (path === "/health") {
      if (req.method !== "GET") {
        throw new GateError("method_not_allowed", "/health accepts GET only");
      }
      const body: HealthResponse = {
        status: "ok",
        uptime_seconds: Math.floor((now() - deps.startedAt) / 1000),
        version: deps.version,
        protocol: PROTOCOL_VERSION,
        session_lease: true,
      };
      return jsonResponse(body);
    }
    if (!PATHS.has(path)) {
      throw new GateError("not_found", `no such endpoint: ${path.slice(0, 100)}`);
    }
    const handler = TABLE[req.method]?.[path];
    if (!handler) {
      throw new GateError(
        "method_not_allowed",
        `${path} accepts ${allowed(path).join(", ")}, not ${req.method.slice(0, 10)}`,
      );
    }
    const proto = req.headers.get(PROTOCOL_HEADER);
    if (proto !== String(PROTOCOL_VERSION)) {
      throw new GateError(
        "protocol_mismatch",
        proto === null
          ? `missing ${PROTOCOL_HEADER} header; this gate speaks protocol ${PROTOCOL_VERSION}`
          : `client speaks protocol ${
            JSON.stringify(proto.slice(0, 10))
          }, this gate speaks ${PROTOCOL_VERSION}; install matching gcp-gate versions on host and container`,
      );
    }
    return handler(req, url, signal);
  }

  function failure(req: Request, err: unknown): Response {
    if (!(err instanceof GateError) && req.signal.aborted) {
      // The client left (or the gate is stopping): nobody reads this answer.
      return errorResponse(new GateError("timeout", "the request was cancelled", { status: 503 }));
    }
    if (!(err instanceof GateError)) {
      deps.log.error("unexpected error", { error: String(err) });
    }
    const res = errorResponse(err);
    if (err instanceof GateError && err.code === "method_not_allowed") {
      const path = new URL(req.url).pathname;
      res.headers.set("allow", path === "/health" ? "GET" : allowed(path).join(", "));
    }
    return res;
  }

  const PROTOCOL = String(PROTOCOL_VERSION);
  return (req) => {
    const signal = (): AbortSignal => req.signal;
    try {
      // Same checks as route() for a URL it already accepted as a dev-token
      // query: the method and the protocol header are still checked per request.
      const hot = hotUrls.get(req.url);
      if (
        hot !== undefined && req.method === "GET" && req.headers.get(PROTOCOL_HEADER) === PROTOCOL
      ) {
        const res = answerDev(hot, signal);
        return res instanceof Promise ? res.catch((err) => failure(req, err)) : res;
      }
      if (req.url.length > LIMITS.maxUrlBytes) {
        throw new GateError("too_large", `request URL longer than ${LIMITS.maxUrlBytes} bytes`, {
          status: 414,
        });
      }
      const res = route(req, new URL(req.url), signal);
      return res instanceof Promise ? res.catch((err) => failure(req, err)) : res;
    } catch (err) {
      return failure(req, err);
    }
  };
}
