/**
 * gcp-kube-token's logic: fetch an access token from the metadata server and
 * turn it into a kubectl `ExecCredential`. It runs on every kubectl call, so
 * it imports nothing but tiny shared helpers (no config loader, no TOML/YAML
 * parser, no Google library): its bundle must start like a hello world.
 */
import { GateError } from "../shared/errors.ts";
import { sanitizeMessage } from "../shared/redact.ts";
import { type RawAnswer, rawGet, RawHttpError } from "../shared/raw_http.ts";

export const DEFAULT_METADATA_HOST = "127.0.0.1:8173";
export const TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token";
export const TIMEOUT_MS = 5_000;
/** A token response is a few hundred bytes; anything far larger is not a metadata server. */
export const MAX_BODY_BYTES = 64 * 1024;
/** KUBERNETES_EXEC_INFO carries cluster info (CA data) with provideClusterInfo: bounded. */
export const MAX_EXEC_INFO_BYTES = 1024 * 1024;

export const API_V1 = "client.authentication.k8s.io/v1";
export const API_V1BETA1 = "client.authentication.k8s.io/v1beta1";
export type ExecApiVersion = typeof API_V1 | typeof API_V1BETA1;

/** Where the metadata server is: the parsed GCE_METADATA_HOST. */
export interface MetadataHost {
  readonly hostname: string;
  readonly port: number;
  /** `host:port`, as shown in messages and used as the Host header. */
  readonly hostPort: string;
}

/**
 * Parses GCE_METADATA_HOST (`host[:port]`, default 127.0.0.1:8173). An
 * accidental `http://` scheme or trailing slash is stripped (Google's Go client
 * breaks on them, ours need not); anything else that is not a bare host:port
 * is refused rather than guessed at, because the token goes wherever it points.
 */
export function parseMetadataHost(value: string | undefined): MetadataHost {
  let v = (value ?? "").trim();
  if (v === "") v = DEFAULT_METADATA_HOST;
  v = v.replace(/^http:\/\//i, "").replace(/\/+$/, "");
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(v);
  const port = m?.[2] === undefined ? 80 : Number(m[2]);
  if (!m || port < 1 || port > 65535) {
    throw new GateError(
      "config",
      `GCE_METADATA_HOST=${
        JSON.stringify(sanitizeMessage(value ?? "", 100))
      } is not host:port; set it to the metadata proxy's address, e.g. 127.0.0.1:8173`,
    );
  }
  const hostname = m[1]!;
  return { hostname, port, hostPort: m[2] === undefined ? hostname : `${hostname}:${port}` };
}

/**
 * The ExecCredential apiVersion kubectl asked for in KUBERNETES_EXEC_INFO
 * (v1beta1 when absent: kubectl always sets it, older callers may not).
 */
export function execApiVersion(execInfo: string | undefined): ExecApiVersion {
  if (execInfo === undefined || execInfo.trim() === "") return API_V1BETA1;
  if (execInfo.length > MAX_EXEC_INFO_BYTES) {
    throw new GateError("bad_request", "KUBERNETES_EXEC_INFO is larger than 1 MiB; unset it");
  }
  let apiVersion: unknown;
  try {
    apiVersion = (JSON.parse(execInfo) as { apiVersion?: unknown })?.apiVersion;
  } catch {
    throw new GateError(
      "bad_request",
      "KUBERNETES_EXEC_INFO is not valid JSON; run gcp-kube-token from kubectl or unset the variable",
    );
  }
  if (apiVersion === undefined) return API_V1BETA1;
  if (apiVersion === API_V1 || apiVersion === API_V1BETA1) return apiVersion;
  throw new GateError(
    "bad_request",
    `kubectl asked for ExecCredential ${
      JSON.stringify(sanitizeMessage(String(apiVersion), 100))
    }; set the kubeconfig user's exec apiVersion to ${API_V1} or ${API_V1BETA1}`,
  );
}

/** A kubectl ExecCredential (the subset we produce). */
export interface ExecCredential {
  readonly kind: "ExecCredential";
  readonly apiVersion: ExecApiVersion;
  readonly status: { readonly token: string; readonly expirationTimestamp: string };
}

/**
 * Builds the ExecCredential. The expiry is 1–2 s ahead on purpose: client-go
 * caches exec credentials until they expire, and a short expiry makes every
 * kubectl call ask again, so a plain call and one under `with-prod` (different
 * GCE_METADATA_HOST) never reuse each other's token. The real token lifetime
 * is handled by the metadata proxy's cache, which makes asking again cheap.
 */
export function buildExecCredential(
  token: string,
  apiVersion: ExecApiVersion,
  nowMs: number,
): ExecCredential {
  // RFC 3339 without fractions, rounded up to a whole second at least 1 s ahead.
  const expiry = new Date(Math.ceil((nowMs + 1000) / 1000) * 1000);
  return {
    kind: "ExecCredential",
    apiVersion,
    status: { token, expirationTimestamp: expiry.toISOString().replace(/\.\d{3}Z$/, "Z") },
  };
}

/** Options of one metadata GET. */
export interface GetOptions {
  readonly headers: Readonly<Record<string, string>>;
  readonly signal: AbortSignal;
}

/** Collaborators of {@linkcode fetchMetadataToken}. */
export interface TokenDeps {
  /** GETs `path` from `host` directly (never through an HTTP proxy). */
  get: (host: MetadataHost, path: string, options: GetOptions) => Promise<RawAnswer>;
  now: () => number;
}

/** The token and when it expires (ms since epoch). */
export interface MetadataToken {
  readonly accessToken: string;
  readonly expiresAtMs: number;
}

function isTimeout(err: unknown): boolean {
  return err instanceof DOMException && (err.name === "TimeoutError" || err.name === "AbortError");
}

/**
 * Fetches the default service account's token from the metadata server at
 * `host`. Every failure is a GateError with a one-line, actionable message.
 */
export async function fetchMetadataToken(
  host: MetadataHost,
  deps: TokenDeps,
  timeoutMs: number = TIMEOUT_MS,
): Promise<MetadataToken> {
  const where = `the metadata proxy at ${host.hostPort}`;
  const signal = AbortSignal.timeout(timeoutMs);
  const timedOut = (): GateError =>
    new GateError(
      "timeout",
      `${where} did not answer within ${
        timeoutMs / 1000
      } s; check that gcp-metadata-proxy and gcp-gate are running (or, under with-prod, that the request was approved)`,
    );
  let res: RawAnswer;
  try {
    res = await deps.get(host, TOKEN_PATH, { headers: { "metadata-flavor": "Google" }, signal });
  } catch (err) {
    if (isTimeout(err) || signal.aborted) throw timedOut();
    if (err instanceof Deno.errors.NotCapable) throw err;
    if (err instanceof RawHttpError) {
      throw new GateError(
        "upstream",
        `${where} sent a bad answer (${err.message}); is it a metadata server?`,
      );
    }
    throw new GateError(
      "gate_unreachable",
      `cannot reach ${where}; start gcp-metadata-proxy there or point GCE_METADATA_HOST at it`,
      { cause: err },
    );
  }
  const body = res.body;
  if (res.status !== 200) {
    // The proxy puts the gate's reason (denied, login expired, …) in the body.
    const reason = sanitizeMessage(body.split("\n")[0] ?? "", 300) || "no reason given";
    throw new GateError(
      res.status === 403 ? "denied" : "upstream",
      `${where} refused the token request (HTTP ${res.status}): ${reason}`,
    );
  }
  // Real metadata servers always send this header; its absence means something
  // else (a captive proxy, a web server) is listening there.
  if (res.headers["metadata-flavor"] !== "Google") {
    throw new GateError(
      "upstream",
      `${host.hostPort} is not a metadata server (no "Metadata-Flavor: Google" header); point GCE_METADATA_HOST at gcp-metadata-proxy`,
    );
  }
  let parsed: { access_token?: unknown; expires_in?: unknown };
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    throw new GateError("upstream", `${where} sent a token answer that is not JSON`);
  }
  const token = parsed?.access_token;
  // The token ends up in an HTTP header: refuse anything that could break out of it.
  if (typeof token !== "string" || !/^[\x21-\x7e]{1,8192}$/.test(token)) {
    throw new GateError("upstream", `${where} sent a token answer without a usable access_token`);
  }
  const expiresIn = typeof parsed.expires_in === "number" ? parsed.expires_in : 0;
  return { accessToken: token, expiresAtMs: deps.now() + expiresIn * 1000 };
}

/** GETs straight from the metadata host over TCP (never through HTTP_PROXY). */
export function createDirectGet(): TokenDeps["get"] {
  return (host, path, options) =>
    rawGet({
      hostname: host.hostname.replace(/^\[|\]$/g, ""),
      port: host.port,
      hostHeader: host.hostPort,
      path,
      headers: options.headers,
      signal: options.signal,
      maxBytes: MAX_BODY_BYTES,
    });
}
