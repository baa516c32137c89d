/**
 * The gate's HTTP API as a pure `(GateRequest) => Response` handler (a `Request` is one). Everything
 * that arrives here came from a container and is treated as hostile: every
 * parameter is validated, every size bounded, every error is `{error, code}`.
 *
 * The routes are named functions of `(req, ctx)` in one table (below); the
 * state they share is a {@linkcode GateState} passed in `ctx`.
 */
import { GateError } from "../shared/errors.ts";
import { errorResponse, jsonResponse } from "../shared/http.ts";
import {
  type HealthResponse,
  LIMITS,
  PROTOCOL_HEADER,
  PROTOCOL_VERSION,
} from "../shared/protocol.ts";
import {
  createGateState,
  type GateHandlerDeps,
  type GateState,
  type Route,
  tokenWire,
} from "./routes_context.ts";
import type { GateHandler, GateRequest } from "./server.ts";
import {
  getIdentity,
  getIdentityToken,
  getProjectNumber,
  getUniverseDomain,
} from "./routes_identity.ts";
import { deleteSession, getSession, postRefusal, postSession } from "./routes_session.ts";
import { answerDev, getToken } from "./routes_token.ts";

export type { GateHandlerDeps } from "./routes_context.ts";

/** Every route of the gate's API but `/health`, by method and path. */
const ROUTES: Readonly<Record<string, Readonly<Record<string, Route>>>> = {
  GET: {
    "/token": getToken,
    "/identity": getIdentity,
    "/project-number": getProjectNumber,
    "/universe-domain": getUniverseDomain,
    "/identity-token": getIdentityToken,
    "/session": getSession,
  },
  POST: { "/session": postSession, "/session/refusal": postRefusal },
  DELETE: { "/session": deleteSession },
};
const PATHS: ReadonlySet<string> = new Set(Object.values(ROUTES).flatMap((r) => Object.keys(r)));
const PROTOCOL = String(PROTOCOL_VERSION);

function allowed(path: string): string[] {
  return Object.keys(ROUTES).filter((m) => ROUTES[m]![path] !== undefined);
}

function health(req: GateRequest, gate: GateState): Response {
  if (req.method !== "GET") {
    throw new GateError("method_not_allowed", "/health accepts GET only");
  }
  const body: HealthResponse = {
    status: "ok",
    uptime_seconds: Math.floor((gate.now() - gate.deps.startedAt) / 1000),
    version: gate.deps.version,
    protocol: PROTOCOL_VERSION,
    session_lease: true,
  };
  return jsonResponse(body);
}

function checkProtocol(req: GateRequest): void {
  const proto = req.headers.get(PROTOCOL_HEADER);
  if (proto !== PROTOCOL) {
    throw new GateError(
      "protocol_mismatch",
      proto === null
        ? `missing ${PROTOCOL_HEADER} header; this gate speaks protocol ${PROTOCOL_VERSION}`
        : `client speaks protocol ${
          JSON.stringify(proto.slice(0, 10))
        }, this gate speaks ${PROTOCOL_VERSION}; install matching gcp-gate versions on host and container`,
    );
  }
}

function route(
  req: GateRequest,
  gate: GateState,
  signal: () => AbortSignal,
): Response | Promise<Response> {
  if (req.url.length > LIMITS.maxUrlBytes) {
    throw new GateError("too_large", `request URL longer than ${LIMITS.maxUrlBytes} bytes`, {
      status: 414,
    });
  }
  const url = new URL(req.url);
  const path = url.pathname;
  if (path === "/health") return health(req, gate);
  if (!PATHS.has(path)) {
    throw new GateError("not_found", `no such endpoint: ${path.slice(0, 100)}`);
  }
  const handler = ROUTES[req.method]?.[path];
  if (!handler) {
    throw new GateError(
      "method_not_allowed",
      `${path} accepts ${allowed(path).join(", ")}, not ${req.method.slice(0, 10)}`,
    );
  }
  checkProtocol(req);
  return handler(req, { gate, url, signal });
}

function failure(req: GateRequest, gate: GateState, err: unknown): Response {
  if (!(err instanceof GateError) && req.signal.aborted) {
    // The client left (or the gate is stopping): nobody reads this answer.
    return errorResponse(new GateError("timeout", "the request was cancelled", { status: 503 }));
  }
  if (!(err instanceof GateError)) {
    gate.deps.log.error("unexpected error", { error: String(err) });
  }
  const res = errorResponse(err);
  if (err instanceof GateError && err.code === "method_not_allowed") {
    const path = new URL(req.url).pathname;
    res.headers.set("allow", path === "/health" ? "GET" : allowed(path).join(", "));
  }
  return res;
}

/** Creates the gate's request handler. */
export function createGateHandler(deps: GateHandlerDeps): GateHandler {
  const gate = createGateState(deps);
  const handler: GateHandler = (req) => {
    const signal = (): AbortSignal => req.signal;
    try {
      // Same checks as route() for a URL it already accepted as a dev-token
      // query: the method and the protocol header are still checked per request.
      const hot = gate.hotUrls.get(req.url);
      const res = hot !== undefined && req.method === "GET" &&
          req.headers.get(PROTOCOL_HEADER) === PROTOCOL
        ? answerDev(gate, hot, signal)
        : route(req, gate, signal);
      return res instanceof Promise ? res.catch((err) => failure(req, gate, err)) : res;
    } catch (err) {
      return failure(req, gate, err);
    }
  };
  // The connection loop's shortcut for the same request: a URL already
  // routed as a dev-token query, whose token is cached, is answered with
  // prebuilt bytes; anything else (a miss included) takes the route above.
  handler.hot = (req, close) => {
    const ask = gate.hotUrls.get(req.url);
    if (
      ask === undefined || req.method !== "GET" || req.headers.get(PROTOCOL_HEADER) !== PROTOCOL
    ) return undefined;
    const hit = gate.deps.tokens.peek(ask);
    if (!hit) return undefined;
    gate.deps.audit.countHit("/token", "dev");
    return tokenWire(gate, ask, hit, close);
  };
  return handler;
}
