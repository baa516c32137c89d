/**
 * A GCE metadata server emulator as a pure `(Request) => Response` handler,
 * shared by gcp-metadata-proxy and with-prod's temporary proxy. Everything it
 * serves comes from the caller's deps (tokens, and the gate's identity,
 * project and universe answers); no request can make it call anything else.
 * Every request comes from a container and is treated as hostile: sizes are
 * bounded, parameters validated, and failures answered with 4xx/503 + one line.
 */
import { DEFAULT_SCOPES } from "../protocol.ts";
import { GateError } from "../errors.ts";
import type { GateClient } from "../gate_client.ts";
import type { Logger } from "../log.ts";
import { sanitizeMessage } from "../redact.ts";
import {
  errorPayload,
  type Payload,
  redirectResponse,
  textPayload,
  toResponse,
} from "./responses.ts";
import type { WireRequest as MetadataRequest } from "../http1/parse.ts";
import { rawPath, safeHost, UNNORMALIZED } from "./request_target.ts";
import type { TokenCache } from "./token_cache.ts";
import { metadataTree } from "./directories.ts";
import { createIdentitySources, createTokenSources, type Warn } from "./sources.ts";
import { notFound, PREFIX, serveTree, type WaitState } from "./walk.ts";
import type { Dir } from "./tree.ts";

/** What the handler asks the gate besides access tokens. */
export type MetadataGate = Pick<
  GateClient,
  "identity" | "projectNumber" | "universeDomain" | "identityToken"
>;

/** Dependencies of {@linkcode createMetadataHandler}. */
export interface MetadataDeps {
  /** Access tokens (the caller decides where they come from: dev or a prod session). */
  tokens: TokenCache;
  gate: MetadataGate;
  /** Reported project; the gate's default project when undefined. */
  projectId: string | undefined;
  /**
   * The account whose tokens `tokens` hands out (`service-accounts/default/email`);
   * when undefined, the gate's `/identity` answer.
   */
  serviceAccount: string | undefined;
  zone: string;
  /** `instance/name` (default `gcp-metadata-proxy`). */
  instanceName?: string;
  log?: Logger;
  now?: () => number;
  /** Aborting it ends every `wait_for_change` wait (server shutdown). */
  signal?: AbortSignal;
  /** Upper bound of `timeout_sec` for `wait_for_change` (default 60). */
  maxWaitSeconds?: number;
  /** Most concurrent `wait_for_change` waits; more are answered at once (default 32). */
  maxWaiters?: number;
}

/** Longest request URL accepted (real clients send < 600 bytes). */
export const MAX_URL_BYTES = 2048;
const MAX_QUERY_PARAMS = 16;
const WARN_EVERY_MS = 30_000;

/** Audience of the one ID token asked for to learn our account's email. */
const DEFAULT_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token";

const METADATA_NAMES: ReadonlySet<string> = new Set([
  "localhost",
  "[::1]",
  "metadata.google.internal",
  "metadata",
  "169.254.169.254",
]);

/**
 * True for the Host names a metadata client uses (the proxy listens on
 * loopback only). Anything else is refused: a web page that re-points its own
 * domain at 127.0.0.1 (DNS rebinding) is same-origin with the proxy, so it
 * could send Metadata-Flavor and read the token.
 */
export function isMetadataHost(host: string): boolean {
  const name =
    (host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.replace(/:\d{0,5}$/, ""))
      .toLowerCase();
  return METADATA_NAMES.has(name) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/** A metadata request handler; synchronous on the hot path (a cached default token). */
export type MetadataHandler = (req: MetadataRequest) => Response | Promise<Response>;

/** Logs each distinct warning at most once per WARN_EVERY_MS. */
function rateLimitedWarn(log: Logger | undefined, now: () => number): Warn {
  // A container can send thousands of requests a second while the gate is
  // down: log each distinct warning at most once per WARN_EVERY_MS.
  const warned = new Map<string, number>();
  return (msg, fields) => {
    const key = `${msg}|${String(fields.code ?? "")}`;
    const last = warned.get(key);
    if (last !== undefined && now() - last < WARN_EVERY_MS) return;
    if (warned.size > 100) warned.clear();
    warned.set(key, now());
    log?.warn(msg, fields);
  };
}

/** Maps a failure to 400 (the request was wrong) or 503 (retry later). */
function errorAnswer(err: unknown, warn: Warn, log: Logger | undefined): Payload {
  if (err instanceof GateError) {
    if (err.status === 400) {
      return errorPayload(400, `Bad Request: ${sanitizeMessage(err.message)}`);
    }
    warn("metadata request failed", { code: err.code, error: err.message });
    return errorPayload(503, `Service Unavailable: ${sanitizeMessage(err.message)}`);
  }
  log?.error("unexpected error in metadata handler", { error: String(err) });
  return errorPayload(503, "Service Unavailable: internal error; see gcp-metadata-proxy's log");
}

/** What routing needs besides the request. */
interface RouteState {
  readonly root: Dir;
  readonly wait: WaitState;
}

/** Checks what every metadata request must satisfy, then walks the tree. */
async function route(req: MetadataRequest, head: boolean, state: RouteState): Promise<Response> {
  if (req.url.length > MAX_URL_BYTES) {
    return toResponse(
      errorPayload(414, `Request URL longer than ${MAX_URL_BYTES} bytes`),
      head,
    );
  }
  // Real clients never send dot segments or backslashes; the URL parser
  // would silently rewrite them, so refuse them instead of guessing.
  if (UNNORMALIZED.test(rawPath(req.url))) {
    return toResponse(
      errorPayload(400, "Bad Request: dot segments and backslashes are not allowed in the path"),
      head,
    );
  }
  const url = new URL(req.url);
  // A proxied request is not from a process on this machine: GCE refuses
  // them so a misconfigured HTTP proxy cannot relay tokens off the host.
  if (req.headers.has("x-forwarded-for")) {
    return toResponse(errorPayload(403, "Forbidden: X-Forwarded-For is not allowed"), head);
  }
  const path = url.pathname;
  if (path === "/") return toResponse(textPayload("computeMetadata/\n"), head);
  if (path === "/computeMetadata") {
    return redirectResponse(`http://${safeHost(req, url)}/computeMetadata/${url.search}`);
  }
  if (!path.startsWith(PREFIX)) return notFound(head);
  // Exact value, like GCE: the header proves the caller meant to ask a
  // metadata server (a browser or SSRF'd request cannot set it).
  if (req.headers.get("metadata-flavor") !== "Google") {
    return toResponse(
      errorPayload(
        403,
        'Forbidden: missing required header "Metadata-Flavor: Google"; add it to the request',
      ),
      head,
    );
  }
  let n = 0;
  for (const _ of url.searchParams.keys()) {
    if (++n > MAX_QUERY_PARAMS) {
      return toResponse(
        errorPayload(400, `Bad Request: more than ${MAX_QUERY_PARAMS} query parameters`),
        head,
      );
    }
  }
  return await serveTree(req, { root: state.root, url, head, wait: state.wait });
}

/**
 * True for the one hot request: a default-scope token with no query, GET,
 * straight from a local client. The same checks as the slow path.
 */
function isDefaultTokenGet(req: MetadataRequest): boolean {
  const target = req.url;
  if (
    !target.endsWith(DEFAULT_TOKEN_PATH) ||
    target.indexOf("/", target.indexOf("//") + 2) !== target.length - DEFAULT_TOKEN_PATH.length ||
    req.method !== "GET"
  ) {
    return false;
  }
  const h = req.headers;
  return !h.has("x-forwarded-for") && h.get("metadata-flavor") === "Google";
}

const BAD_HOST =
  "Forbidden: unexpected Host header; use 127.0.0.1:<port>, localhost or metadata.google.internal";

/** Creates the metadata request handler. */
export function createMetadataHandler(deps: MetadataDeps): MetadataHandler {
  const now = deps.now ?? Date.now;
  const warn = rateLimitedWarn(deps.log, now);
  const tokens = createTokenSources({ tokens: deps.tokens, gate: deps.gate, now, warn });
  const identity = createIdentitySources({
    gate: deps.gate,
    projectId: deps.projectId,
    serviceAccount: deps.serviceAccount,
    zone: deps.zone,
    instanceName: deps.instanceName ?? "gcp-metadata-proxy",
  });
  const state: RouteState = {
    root: metadataTree(identity, tokens),
    wait: {
      maxWaitSeconds: deps.maxWaitSeconds ?? 60,
      maxWaiters: deps.maxWaiters ?? 32,
      signal: deps.signal,
      waiters: 0,
    },
  };

  async function slowPath(req: MetadataRequest): Promise<Response> {
    const head = req.method === "HEAD";
    if (req.method !== "GET" && !head) {
      return toResponse(errorPayload(405, "Method Not Allowed: use GET"), false);
    }
    try {
      return await route(req, head, state);
    } catch (err) {
      return toResponse(errorAnswer(err, warn, deps.log), head);
    }
  }

  // The last Host accepted: clients send the same one every time, so the
  // check costs one string comparison on the hot path.
  let knownHost = "";

  return (req) => {
    const target = req.url;
    const start = target.indexOf("//") + 2;
    const host = target.slice(start, target.indexOf("/", start));
    if (host !== knownHost) {
      if (!isMetadataHost(host)) return toResponse(errorPayload(403, BAD_HOST), false);
      knownHost = host;
    }
    // Fast path for the one hot request (a default-scope token, no query,
    // already cached): no URL parsing, no tree walk, no promise, a reused
    // body.
    if (isDefaultTokenGet(req)) {
      const hit = deps.tokens.peekFresh(DEFAULT_SCOPES);
      if (hit) return toResponse(tokens.tokenAnswer(hit), false);
    }
    return slowPath(req);
  };
}
