/**
 * The gate's HTTP API as a pure `(Request) => Response` handler. Everything
 * that arrives here came from a container and is treated as hostile.
 */
import { GateError } from "../shared/errors.ts";
import { errorResponse, jsonResponse } from "../shared/http.ts";
import {
  DEFAULT_SCOPES,
  type HealthResponse,
  LIMITS,
  PROTOCOL_HEADER,
  PROTOCOL_VERSION,
  type TokenResponse,
} from "../shared/protocol.ts";
import type { Logger } from "../shared/log.ts";
import type { DevTokenMinter } from "./tokens.ts";

/** Dependencies of {@linkcode createGateHandler}. */
export interface GateHandlerDeps {
  tokens: DevTokenMinter;
  log: Logger;
  version: string;
  maxTokenTtlSeconds: number;
  startedAt: number;
  now?: () => number;
}

const SCOPE_RE = /^[A-Za-z0-9._:/\-]{1,200}$/;

/** Parses `?scopes=a,b` (also space-separated); defaults to cloud-platform. */
export function parseScopes(raw: string | null): string[] {
  if (raw === null || raw.trim() === "") return [...DEFAULT_SCOPES];
  const scopes = raw.split(/[,\s]+/).filter((s) => s !== "");
  if (scopes.length > 50) {
    throw new GateError("bad_request", "scopes: at most 50 scopes are allowed");
  }
  for (const s of scopes) {
    if (!SCOPE_RE.test(s)) {
      throw new GateError(
        "bad_request",
        `scopes: ${JSON.stringify(s.slice(0, 60))} is not a valid OAuth scope`,
      );
    }
  }
  return [...new Set(scopes)];
}

/** Parses an integer parameter within [min, max]. */
export function parseIntParam(
  name: string,
  raw: string | null,
  min: number,
  max: number,
  fallback: number,
): number {
  if (raw === null || raw === "") return fallback;
  if (!/^\d{1,9}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new GateError(
      "bad_request",
      `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw.slice(0, 20))}`,
    );
  }
  return Number(raw);
}

function allowOnly(params: URLSearchParams, allowed: readonly string[]): void {
  for (const k of params.keys()) {
    if (!allowed.includes(k)) {
      throw new GateError(
        "bad_request",
        `unknown query parameter ${JSON.stringify(k.slice(0, 40))}; allowed: ${
          allowed.join(", ") || "none"
        }`,
      );
    }
  }
}

/** Creates the gate's request handler. */
export function createGateHandler(deps: GateHandlerDeps): (req: Request) => Promise<Response> {
  const now = deps.now ?? Date.now;

  async function route(req: Request, url: URL): Promise<Response> {
    const method = req.method;
    const path = url.pathname;
    const only = (m: string): void => {
      if (method !== m) throw new GateError("method_not_allowed", `${path} accepts ${m} only`);
    };
    if (path === "/health") {
      only("GET");
      const body: HealthResponse = {
        status: "ok",
        uptime_seconds: Math.floor((now() - deps.startedAt) / 1000),
        version: deps.version,
        protocol: PROTOCOL_VERSION,
      };
      return jsonResponse(body);
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
    if (path === "/token") {
      only("GET");
      allowOnly(url.searchParams, ["scopes", "ttl_seconds"]);
      const scopes = parseScopes(url.searchParams.get("scopes"));
      const ttl = parseIntParam(
        "ttl_seconds",
        url.searchParams.get("ttl_seconds"),
        60,
        deps.maxTokenTtlSeconds,
        deps.maxTokenTtlSeconds,
      );
      const t = await deps.tokens.get({ scopes, ttlSeconds: ttl });
      const body: TokenResponse = {
        access_token: t.token,
        expires_in: Math.max(0, Math.floor((t.expiresAt - now()) / 1000)),
        token_type: "Bearer",
      };
      return jsonResponse(body);
    }
    throw new GateError("not_found", `no such endpoint: ${path.slice(0, 100)}`);
  }

  return async (req) => {
    try {
      if (req.url.length > LIMITS.maxUrlBytes) {
        throw new GateError("too_large", `request URL longer than ${LIMITS.maxUrlBytes} bytes`, {
          status: 414,
        });
      }
      return await route(req, new URL(req.url));
    } catch (err) {
      if (!(err instanceof GateError)) deps.log.error("unexpected error", { error: String(err) });
      return errorResponse(err);
    }
  };
}
