/**
 * The wrapped command's environment: the caller's, minus every variable that
 * could carry or select another credential, plus the variables that point
 * Google's clients at the temporary proxy and the private gcloud config.
 * The token itself is never put in a variable: anything the child spawns, or
 * any crash report, could copy the environment.
 */
import { GateError } from "../shared/errors.ts";

/**
 * Credential-bearing or credential-selecting variables removed from the
 * child's environment (documented in the README; keep both in step).
 */
export const REMOVED_VARIABLES: readonly string[] = Object.freeze([
  // Google client libraries, gcloud's own credential overrides
  "GOOGLE_APPLICATION_CREDENTIALS",
  "GOOGLE_OAUTH_ACCESS_TOKEN",
  "GOOGLE_API_KEY",
  "CLOUDSDK_CONFIG",
  "CLOUDSDK_ACTIVE_CONFIG_NAME",
  "CLOUDSDK_CORE_ACCOUNT",
  // Terraform's google provider and its GCS backend
  "GOOGLE_CREDENTIALS",
  "GOOGLE_CLOUD_KEYFILE_JSON",
  "GCLOUD_KEYFILE_JSON",
  "GOOGLE_IMPERSONATE_SERVICE_ACCOUNT",
  "GOOGLE_BACKEND_CREDENTIALS",
  "GOOGLE_BACKEND_IMPERSONATE_SERVICE_ACCOUNT",
  "GOOGLE_GHA_CREDS_PATH",
  // gsutil / boto
  "BOTO_CONFIG",
  "BOTO_PATH",
  // GDAL's Google Cloud Storage driver
  "CPL_GS_BEARER",
  "CPL_GS_CREDENTIALS_FILE",
  "GS_SECRET_ACCESS_KEY",
  "GS_ACCESS_KEY_ID",
  "GS_OAUTH2_REFRESH_TOKEN",
  "GS_OAUTH2_CLIENT_ID",
  "GS_OAUTH2_CLIENT_SECRET",
  "GS_OAUTH2_CLIENT_EMAIL",
  "GS_OAUTH2_PRIVATE_KEY",
  "GS_OAUTH2_PRIVATE_KEY_FILE",
  // Trusts another CA for gcloud's API calls, i.e. lets whoever holds that CA
  // read the prod bearer token in transit (CA bundles like SSL_CERT_FILE are
  // kept: corporate TLS inspection needs them; the README names the risk).
  "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
  // Replaced below; removed first so a stale value never survives
  "GCE_METADATA_HOST",
  "GCE_METADATA_IP",
  "GCE_METADATA_ROOT",
]);

/**
 * Prefixes removed as a whole: every gcloud `auth/*` property
 * (`CLOUDSDK_AUTH_ACCESS_TOKEN`, `…_ACCESS_TOKEN_FILE`,
 * `…_CREDENTIAL_FILE_OVERRIDE`, `…_IMPERSONATE_SERVICE_ACCOUNT`, …) selects
 * or carries a credential; gcloud's `api_endpoint_overrides/*` and
 * `api_client_overrides/*` send its requests, prod bearer token included, to
 * any URL they name.
 */
export const REMOVED_PREFIXES: readonly string[] = Object.freeze([
  "CLOUDSDK_AUTH_",
  "CLOUDSDK_API_ENDPOINT_OVERRIDES_",
  "CLOUDSDK_API_CLIENT_OVERRIDES_",
]);

/**
 * Suffixes removed as a whole: a universe domain (`CLOUDSDK_CORE_UNIVERSE_DOMAIN`,
 * `GOOGLE_CLOUD_UNIVERSE_DOMAIN`, …) makes clients build every API URL from
 * it, so the prod token would go to that domain's hosts.
 */
export const REMOVED_SUFFIXES: readonly string[] = Object.freeze(["_UNIVERSE_DOMAIN"]);

/** The marker a nested with-prod recognises (no secret in it). */
export const NESTING_MARKER = "GCP_GATE_WITH_PROD";

/**
 * The request reason Google records in Cloud Audit Logs for each call. Read
 * by gcloud (property core/request_reason), gsutil, and Terraform's google
 * and google-beta providers (their `request_reason`); Google's client
 * libraries (Python, Node, Go, Java) read no request reason from the
 * environment. See docs/pam.md.
 */
export const REQUEST_REASON_VARIABLE = "CLOUDSDK_CORE_REQUEST_REASON";

/** Variables with-prod sets; `-e` may not override them. */
export const MANAGED_VARIABLES: readonly string[] = Object.freeze([
  "GCE_METADATA_HOST",
  "GCE_METADATA_IP",
  "GCE_METADATA_ROOT",
  "CLOUDSDK_CONFIG",
  "CLOUDSDK_CORE_ACCOUNT",
  "CLOUDSDK_CORE_PROJECT",
  "GOOGLE_CLOUD_PROJECT",
  "GCLOUD_PROJECT",
  "GOOGLE_CLOUD_QUOTA_PROJECT",
  REQUEST_REASON_VARIABLE,
  NESTING_MARKER,
]);

/** True when `name` is removed from the child's environment. */
export function isRemovedVariable(name: string): boolean {
  return REMOVED_VARIABLES.includes(name) || REMOVED_PREFIXES.some((p) => name.startsWith(p)) ||
    REMOVED_SUFFIXES.some((s) => name.endsWith(s));
}

/** What the nesting marker says: where the running session's proxy is. */
export interface NestingInfo {
  /** `127.0.0.1:<port>` of the outer with-prod's proxy. */
  readonly proxy: string;
  readonly project: string | undefined;
  readonly scopes: readonly string[];
  /** The outer private gcloud config directory. */
  readonly configDir: string;
  readonly account: string;
}

/** Encodes the marker value (URL query syntax: no quoting problems in shells). */
export function formatNestingMarker(info: NestingInfo): string {
  const q = new URLSearchParams({
    proxy: info.proxy,
    scopes: info.scopes.join(","),
    config: info.configDir,
    account: info.account,
  });
  if (info.project !== undefined) q.set("project", info.project);
  return q.toString();
}

/** Parses the marker; undefined when absent or malformed (then it is ignored). */
export function parseNestingMarker(value: string | undefined): NestingInfo | undefined {
  if (!value) return undefined;
  const q = new URLSearchParams(value);
  const proxy = q.get("proxy") ?? "";
  const configDir = q.get("config") ?? "";
  // Only a loopback proxy and an absolute directory: anything else is not ours.
  if (!/^127\.0\.0\.1:\d{1,5}$/.test(proxy) || !configDir.startsWith("/")) return undefined;
  const project = q.get("project");
  return {
    proxy,
    project: project === null || project === "" ? undefined : project,
    scopes: (q.get("scopes") ?? "").split(",").filter((s) => s !== ""),
    configDir,
    account: q.get("account") ?? "",
  };
}

/** What the child's environment points at. */
export interface ChildEnvOptions {
  /** `127.0.0.1:<port>` of the temporary proxy (no scheme: Go breaks on one). */
  readonly proxy: string;
  readonly configDir: string;
  readonly account: string;
  readonly project: string | undefined;
  readonly scopes: readonly string[];
  /** Raw `-e K=V` arguments. */
  readonly extras: readonly string[];
  /** The session's request reason from the gate (names its approval). */
  readonly requestReason?: string | undefined;
}

function addNoProxy(current: string | undefined): string {
  const have = (current ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
  const want = ["127.0.0.1", "localhost"].filter((h) => !have.includes(h));
  return [...want, ...have].join(",");
}

/**
 * Expands `${VAR}` and `${VAR:-default}` from `env` (an unset `${VAR}` is
 * empty, like the shell). Nothing else is special: no command substitution.
 */
export function expandValue(value: string, env: Readonly<Record<string, string>>): string {
  return value.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
    (_m, name: string, def: string | undefined) => {
      const v = env[name];
      return v !== undefined && v !== "" ? v : def ?? "";
    },
  );
}

/** Parses one `-e K=V`; refuses names with-prod removes or manages. */
export function parseExtra(arg: string): [string, string] {
  const eq = arg.indexOf("=");
  const name = eq < 0 ? arg : arg.slice(0, eq);
  if (eq < 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new GateError(
      "usage",
      `-e ${
        JSON.stringify(arg.slice(0, 80))
      }: expected NAME=VALUE with NAME made of letters, digits and _`,
    );
  }
  if (isRemovedVariable(name) || MANAGED_VARIABLES.includes(name)) {
    throw new GateError(
      "usage",
      `-e ${name}: with-prod manages credential variables itself; drop this -e`,
    );
  }
  return [name, arg.slice(eq + 1)];
}

/** Builds the child's environment from the caller's `base`. */
export function buildChildEnv(
  base: Readonly<Record<string, string>>,
  options: ChildEnvOptions,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) {
    if (!isRemovedVariable(k)) env[k] = v;
  }
  env.GCE_METADATA_HOST = options.proxy;
  env.GCE_METADATA_IP = options.proxy;
  env.GCE_METADATA_ROOT = options.proxy;
  // Clients honour HTTP(S)_PROXY: without this the token request would leave the machine.
  env.NO_PROXY = addNoProxy(base.NO_PROXY);
  env.no_proxy = addNoProxy(base.no_proxy);
  env.CLOUDSDK_CONFIG = options.configDir;
  // Printable ASCII and short, or not at all: it becomes an HTTP header in every client.
  const reason = options.requestReason;
  if (typeof reason === "string" && /^[\x20-\x7e]{1,200}$/.test(reason)) {
    env[REQUEST_REASON_VARIABLE] = reason;
  }
  env.CLOUDSDK_CORE_ACCOUNT = options.account;
  if (options.project !== undefined) {
    env.CLOUDSDK_CORE_PROJECT = options.project;
    env.GOOGLE_CLOUD_PROJECT = options.project;
    env.GCLOUD_PROJECT = options.project;
    env.GOOGLE_CLOUD_QUOTA_PROJECT = options.project;
  }
  env[NESTING_MARKER] = formatNestingMarker({
    proxy: options.proxy,
    project: options.project,
    scopes: options.scopes,
    configDir: options.configDir,
    account: options.account,
  });
  // Extras last, each expanded against what is set so far (so credentials
  // removed above cannot be copied back in through ${…}).
  for (const arg of options.extras) {
    const [name, raw] = parseExtra(arg);
    env[name] = expandValue(raw, env);
  }
  return env;
}
