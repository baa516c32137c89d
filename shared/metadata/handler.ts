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
import { isRecursive, parseIdentityParams, parseScopesParam, parseWaitParams } from "./params.ts";
import {
  errorPayload,
  etagOf,
  jsonPayload,
  type Payload,
  redirectResponse,
  textPayload,
  toResponse,
} from "./responses.ts";
import { jwtExpiry } from "./jwt.ts";
import type { MetadataRequest } from "./http1.ts";
import { decodeSegment, rawPath, safeHost, UNNORMALIZED } from "./request_target.ts";
import { type CachedToken, createExpiringCache, memoize, type TokenCache } from "./token_cache.ts";

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
const PREFIX = "/computeMetadata/";
type Warn = (msg: string, fields: Record<string, unknown>) => void;
const WARN_EVERY_MS = 30_000;

/** Audience of the one ID token asked for to learn our account's email. */
const DEFAULT_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token";

interface Ctx {
  readonly url: URL;
  readonly params: URLSearchParams;
}

type Leaf = { readonly kind: "leaf"; get(ctx: Ctx): Promise<Payload> };
type Dir = {
  readonly kind: "dir";
  /** Entries for the listing; sub-directories end with `/`. */
  list(): Promise<string[]>;
  child(name: string): Promise<Node | undefined>;
  json(): Promise<unknown>;
};
type Node = Leaf | Dir;

const leaf = (get: (ctx: Ctx) => Promise<Payload>): Leaf => ({ kind: "leaf", get });
const constText = (value: () => Promise<string>): Leaf =>
  leaf(async () => textPayload(await value()));

/** A directory of fixed children; `json` builds GCE's camelCase recursive form. */
function staticDir(
  children: Record<string, Node>,
  json: () => Promise<unknown>,
  hidden: Record<string, Node> = {},
): Dir {
  return {
    kind: "dir",
    list: () =>
      Promise.resolve(
        Object.entries(children).map(([k, n]) => (n.kind === "dir" ? `${k}/` : k)),
      ),
    child: (name) => Promise.resolve(children[name] ?? hidden[name]),
    json,
  };
}

function emptyDir(): Dir {
  return staticDir({}, () => Promise.resolve({}));
}

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

/** Creates the metadata request handler. */
export function createMetadataHandler(deps: MetadataDeps): MetadataHandler {
  const now = deps.now ?? Date.now;
  const maxWait = deps.maxWaitSeconds ?? 60;
  const maxWaiters = deps.maxWaiters ?? 32;
  const instanceName = deps.instanceName ?? "gcp-metadata-proxy";
  let waiters = 0;
  // A container can send thousands of requests a second while the gate is
  // down: log each distinct warning at most once per WARN_EVERY_MS.
  const warned = new Map<string, number>();
  const warn: Warn = (msg, fields) => {
    const key = `${msg}|${String(fields.code ?? "")}`;
    const last = warned.get(key);
    if (last !== undefined && now() - last < WARN_EVERY_MS) return;
    if (warned.size > 100) warned.clear();
    warned.set(key, now());
    deps.log?.warn(msg, fields);
  };

  // Identity, project and universe never change while we run: ask once.
  // The gate names the account whose tokens it hands out (`service_account`);
  // without one configured, tokens are the ADC principal's own. A transient
  // failure is not cached (memoize), so it cannot pin the wrong account.
  const identity = memoize(async () => {
    const r = await deps.gate.identity();
    return r.service_account ?? r.email;
  });
  const project = memoize(async () => {
    const r = await deps.gate.projectNumber(deps.projectId);
    if (!/^\d{1,20}$/.test(r.project_number)) {
      throw new GateError("upstream", "the gate returned a project number that is not digits");
    }
    return r;
  });
  const universe = memoize(() => deps.gate.universeDomain().then((r) => r.universe_domain));
  const idTokens = createExpiringCache<string>({ now, maxEntries: 32 });

  // The account whose tokens we serve. The gate's /identity names its ADC
  // principal, which is that account only when no service account is
  // impersonated, so the configured account wins.
  const email = (): Promise<string> =>
    deps.serviceAccount ? Promise.resolve(deps.serviceAccount) : identity.get();
  const projectId = async (): Promise<string> => deps.projectId ?? (await project.get()).project_id;
  const projectNumber = async (): Promise<string> => (await project.get()).project_number;
  const hostname = async (): Promise<string> =>
    `${instanceName}.${deps.zone}.c.${await projectId()}.internal`;
  const zonePath = async (): Promise<string> =>
    `projects/${await projectNumber()}/zones/${deps.zone}`;
  // A stable id below 2^53, so JavaScript clients read it exactly.
  const instanceId = (): string =>
    String(parseInt(etagOf(`${instanceName}/${deps.zone}`).slice(0, 13), 16));

  // The token answer only changes when the token or its whole-second
  // `expires_in` does: keep the serialised body (and its ETag) until then.
  let lastToken: { token: string; expiresIn: number; payload: Payload } | undefined;

  function tokenAnswer(t: CachedToken): Payload {
    const expiresIn = Math.max(0, Math.floor((t.expiresAt - now()) / 1000));
    if (lastToken?.token === t.accessToken && lastToken.expiresIn === expiresIn) {
      return lastToken.payload;
    }
    const payload = jsonPayload({
      access_token: t.accessToken,
      expires_in: expiresIn,
      token_type: "Bearer",
    });
    lastToken = { token: t.accessToken, expiresIn, payload };
    return payload;
  }

  async function tokenPayload(scopes: readonly string[]): Promise<Payload> {
    let t;
    try {
      t = await deps.tokens.get(scopes);
    } catch (err) {
      // The gate is down or failing: a token that is still valid is better
      // than an error (clients would only retry).
      const stale = deps.tokens.peekValid(scopes);
      if (!stale) throw err;
      warn("gate failed; serving a cached token that is still valid", {
        error: err instanceof GateError ? err.message : String(err),
      });
      t = stale;
    }
    return tokenAnswer(t);
  }

  const accessToken = (ctx: Ctx): Promise<Payload> =>
    tokenPayload(parseScopesParam(ctx.params.get("scopes")));

  async function identityToken(ctx: Ctx): Promise<Payload> {
    const p = parseIdentityParams(ctx.url.search);
    const key = `${p.format}|${p.licenses}|${p.audience}`;
    const jwt = await idTokens.get(key, async () => {
      const r = await deps.gate.identityToken(p);
      return { value: r.id_token, freshUntil: jwtExpiry(r.id_token) - 5 * 60_000 };
    });
    return textPayload(jwt);
  }

  function serviceAccountDir(): Dir {
    return staticDir({
      aliases: constText(() => Promise.resolve("default")),
      email: constText(email),
      identity: leaf(identityToken),
      scopes: constText(() => Promise.resolve(DEFAULT_SCOPES.join("\n") + "\n")),
      token: leaf(accessToken),
    }, async () => ({ aliases: ["default"], email: await email(), scopes: [...DEFAULT_SCOPES] }));
  }

  const accountDir = serviceAccountDir();
  const serviceAccounts: Dir = {
    kind: "dir",
    list: async () => ["default/", `${await email()}/`],
    async child(name) {
      if (name === "default") return accountDir;
      // Some gcloud versions ask by email; compare only once a name looks like one.
      return name.includes("@") && name.toLowerCase() === (await email()).toLowerCase()
        ? accountDir
        : undefined;
    },
    json: async () => {
      const sa = await accountDir.json();
      return { default: sa, [await email()]: sa };
    },
  };

  const instance = staticDir({
    attributes: emptyDir(),
    hostname: constText(hostname),
    id: constText(() => Promise.resolve(instanceId())),
    name: constText(() => Promise.resolve(instanceName)),
    "service-accounts": serviceAccounts,
    zone: constText(zonePath),
  }, async () => ({
    attributes: {},
    hostname: await hostname(),
    id: Number(instanceId()),
    name: instanceName,
    serviceAccounts: await serviceAccounts.json(),
    zone: await zonePath(),
  }));

  const projectDir = staticDir({
    attributes: emptyDir(),
    // Digits only, no newline: gcloud checks isdigit() on the whole body.
    "numeric-project-id": constText(projectNumber),
    "project-id": constText(projectId),
  }, async () => ({
    attributes: {},
    numericProjectId: Number(await projectNumber()),
    projectId: await projectId(),
  }));

  const universeLeaf = constText(() => universe.get());
  const universeDir = staticDir(
    { "universe-domain": universeLeaf },
    async () => ({ universeDomain: await universe.get() }),
    // Go's x/oauth2 asks with an underscore; not listed, like GCE.
    { universe_domain: universeLeaf },
  );

  const v1 = staticDir(
    { instance, project: projectDir, universe: universeDir },
    async () => ({
      instance: await instance.json(),
      project: await projectDir.json(),
      universe: await universeDir.json(),
    }),
  );
  const root = staticDir({ v1 }, async () => ({ v1: await v1.json() }));

  /** Walks `/computeMetadata/<rel>` and answers it. */
  async function serve(req: MetadataRequest, url: URL, head: boolean): Promise<Response> {
    const rel = url.pathname.slice(PREFIX.length);
    const segments = rel === "" ? [] : rel.split("/");
    const dirForm = rel === "" || rel.endsWith("/");
    if (dirForm && segments.length > 0) segments.pop();
    let node: Node = root;
    for (const raw of segments) {
      if (node.kind !== "dir" || raw === "") return notFound(head);
      const next: Node | undefined = await node.child(decodeSegment(raw));
      if (!next) return notFound(head);
      node = next;
    }
    const ctx: Ctx = { url, params: url.searchParams };
    if (node.kind === "dir" && !dirForm) {
      // GCE redirects a directory to its slash form and keeps the query.
      return redirectResponse(`http://${safeHost(req, url)}${url.pathname}/${url.search}`);
    }
    if (node.kind === "leaf" && dirForm) return notFound(head);
    const dir = node.kind === "dir" ? node : undefined;
    const produce = (): Promise<Payload> =>
      dir
        ? (isRecursive(ctx.params)
          ? dir.json().then((v) => jsonPayload(v))
          : dir.list().then((l) => textPayload(l.map((e) => `${e}\n`).join(""))))
        : (node as Leaf).get(ctx);
    let payload = await produce();
    let etag = etagOf(payload.body);
    const wait = parseWaitParams(ctx.params, maxWait);
    if (wait && wait.lastEtag === etag && waiters < maxWaiters) {
      // Nothing we serve changes while we run except tokens: wait out the
      // (bounded) timeout, then answer with the current value.
      waiters++;
      try {
        await sleep(wait.timeoutSec * 1000, deps.signal);
      } finally {
        waiters--;
      }
      payload = await produce();
      etag = etagOf(payload.body);
    }
    return toResponse(payload, head, etag);
  }

  function notFound(head: boolean): Response {
    return toResponse(errorPayload(404, "Not Found: no such metadata path"), head);
  }

  async function route(req: MetadataRequest, head: boolean): Promise<Response> {
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
    return await serve(req, url, head);
  }

  async function slowPath(req: MetadataRequest): Promise<Response> {
    const head = req.method === "HEAD";
    if (req.method !== "GET" && !head) {
      return toResponse(errorPayload(405, "Method Not Allowed: use GET"), false);
    }
    try {
      return await route(req, head);
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
      if (!isMetadataHost(host)) {
        return toResponse(
          errorPayload(
            403,
            "Forbidden: unexpected Host header; use 127.0.0.1:<port>, localhost or metadata.google.internal",
          ),
          false,
        );
      }
      knownHost = host;
    }
    // Fast path for the one hot request (a default-scope token, no query,
    // already cached): no URL parsing, no tree walk, no promise, a reused
    // body. The same checks as the slow path, in the same order.
    if (
      target.endsWith(DEFAULT_TOKEN_PATH) &&
      target.indexOf("/", target.indexOf("//") + 2) === target.length - DEFAULT_TOKEN_PATH.length &&
      req.method === "GET"
    ) {
      const h = req.headers;
      if (!h.has("x-forwarded-for") && h.get("metadata-flavor") === "Google") {
        const hit = deps.tokens.peekFresh(DEFAULT_SCOPES);
        if (hit) return toResponse(tokenAnswer(hit), false);
      }
    }
    return slowPath(req);
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

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done);
  });
}
