/**
 * The state the gate's routes share, passed to each route explicitly: the
 * injected collaborators and the two bounded caches of the dev-token hot path.
 */
import { answerBytes } from "../shared/http1/wire.ts";
import type { Logger } from "../shared/log.ts";
import { type TokenResponse } from "../shared/protocol.ts";
import type { AuditLog } from "./audit.ts";
import type { IdentityService } from "./identity.ts";
import type { ProdService } from "./prod.ts";
import type { DevTokenMinter, DevTokenRequest } from "./tokens.ts";
import type { GateRequest } from "./server.ts";

/** Dependencies of {@linkcode createGateHandler} (gate/routes.ts). */
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

/** What every route may use: the deps, the clock, and the hot path's caches. */
export interface GateState {
  readonly deps: GateHandlerDeps;
  readonly now: () => number;
  readonly ttlRange: { readonly min: number; readonly max: number };
  /**
   * Raw request URLs already routed to a valid dev-token query: the hot path
   * matches the exact string and skips parsing it again (`new URL` is the
   * largest per-request cost left). Only validated URLs get in, and only so many.
   */
  readonly hotUrls: Map<string, DevTokenRequest>;
  /**
   * Proxies ask the same few queries over and over: each distinct query
   * string is validated once (only valid ones are kept, and only so many).
   */
  readonly devQueries: Map<string, DevTokenRequest>;
}

/** One request's view for a route: the shared state, the parsed URL, its disconnect signal. */
export interface RouteContext {
  readonly gate: GateState;
  readonly url: URL;
  /**
   * The client's disconnect signal, made on demand: creating it costs a
   * native op per request, so the cached hot path never asks for it.
   */
  readonly signal: () => AbortSignal;
}

/** A route: a named function of the request and its context. */
export type Route = (req: GateRequest, ctx: RouteContext) => Promise<Response> | Response;

/** Most entries either cache holds before it is emptied (bounded by design). */
export const MAX_CACHED_QUERIES = 256;

const JSON_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "application/json",
  "cache-control": "no-store",
};

/** Builds the routes' shared state from the handler's deps. */
export function createGateState(deps: GateHandlerDeps): GateState {
  return {
    deps,
    now: deps.now ?? Date.now,
    ttlRange: { min: 60, max: deps.maxTokenTtlSeconds },
    hotUrls: new Map(),
    devQueries: new Map(),
  };
}

function expiresIn(gate: GateState, t: { expiresAt: number }): number {
  return Math.max(0, Math.floor((t.expiresAt - gate.now()) / 1000));
}

/** The `/token` answer's body for a token (dev or prod). */
function tokenJson(token: string, expires: number): string {
  const body: TokenResponse = { access_token: token, expires_in: expires, token_type: "Bearer" };
  return JSON.stringify(body);
}

const JSON_HEADER_LIST: readonly [string, string][] = Object.entries(JSON_HEADERS);
// The last keep-alive answer per dev query: it changes once a second (expires_in).
const wires = new WeakMap<
  DevTokenRequest,
  { token: string; expires: number; bytes: Uint8Array }
>();

/**
 * The hot path's `/token` answer as HTTP/1.1 bytes, the same as
 * {@linkcode tokenBody} would be on the wire, without building a Response:
 * Response objects, not the token, were most of a cached answer's cost.
 */
export function tokenWire(
  gate: GateState,
  ask: DevTokenRequest,
  t: { token: string; expiresAt: number },
  close: boolean,
): Uint8Array {
  const expires = expiresIn(gate, t);
  const last = wires.get(ask);
  if (!close && last?.token === t.token && last.expires === expires) return last.bytes;
  const bytes = answerBytes(200, JSON_HEADER_LIST, tokenJson(t.token, expires), close);
  if (!close) wires.set(ask, { token: t.token, expires, bytes });
  return bytes;
}

/** The `/token` answer for a token (dev or prod). */
export function tokenBody(gate: GateState, t: { token: string; expiresAt: number }): Response {
  return new Response(tokenJson(t.token, expiresIn(gate, t)), { headers: JSON_HEADERS });
}

/**
 * Approvals also end when the gate stops (their dialogs close); other
 * requests are left to finish during the drain.
 */
export function approvalSignal(gate: GateState, signal: AbortSignal): AbortSignal {
  return gate.deps.signal ? AbortSignal.any([signal, gate.deps.signal]) : signal;
}
