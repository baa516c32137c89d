/**
 * What `gcp-metadata-proxy doctor` may touch beyond the proxy's own grants.
 * The launcher's resolver (scripts/resolve.ts) turns these into permission
 * scopes for the `doctor` subcommand only; the long-running proxy never gets
 * them. The doctor itself uses the same lists, so the two cannot drift apart.
 */
import type { EnvReader } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";

/** Variables whose mere presence means a credential bypasses (or overrides) the gate. */
export const CREDENTIAL_ENV: readonly string[] = [
  "GOOGLE_APPLICATION_CREDENTIALS",
  "GOOGLE_CREDENTIALS",
  "GOOGLE_OAUTH_ACCESS_TOKEN",
  "GOOGLE_API_KEY",
  "GOOGLE_CLOUD_KEYFILE_JSON",
];

/** gcloud's `auth/*` properties that replace or redirect its credential (as CLOUDSDK_AUTH_*). */
export const CLOUDSDK_AUTH_ENV: readonly string[] = [
  "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE",
  "CLOUDSDK_AUTH_ACCESS_TOKEN",
  "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE",
  "CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT",
  "CLOUDSDK_AUTH_AUTHORIZATION_TOKEN_FILE",
  "CLOUDSDK_AUTH_DISABLE_CREDENTIALS",
  "CLOUDSDK_AUTH_TOKEN_HOST",
  "CLOUDSDK_AUTH_LOGIN_CONFIG_FILE",
];

/** The metadata variables and the proxy variables a client would send tokens through. */
export const METADATA_ENV: readonly string[] = [
  "GCE_METADATA_HOST",
  "GCE_METADATA_IP",
  "GCE_METADATA_ROOT",
  "HTTP_PROXY",
  "http_proxy",
  "NO_PROXY",
  "no_proxy",
];

/** Every variable the doctor reads (names only are ever printed, never values). */
export function doctorEnvNames(): string[] {
  return [...METADATA_ENV, ...CREDENTIAL_ENV, ...CLOUDSDK_AUTH_ENV, "CLOUDSDK_CONFIG"];
}

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

/** gcloud's config directory in this container. */
export function gcloudConfigDir(env: EnvReader): string | undefined {
  const sdk = env("CLOUDSDK_CONFIG");
  if (sdk && sdk.startsWith("/")) return sdk;
  const home = env("HOME");
  return home && home.startsWith("/") ? `${home}/.config/gcloud` : undefined;
}

/**
 * Paths the doctor reads: HOME (credential files and key files, scanned with
 * bounds), gcloud's config dir, and the socket's directory (its owner/mode).
 */
export function doctorReadPaths(socketPath: string, env: EnvReader): string[] {
  const out = [dirname(socketPath)];
  const home = env("HOME");
  if (home && home.startsWith("/") && home !== "/") out.push(home);
  const gcloud = gcloudConfigDir(env);
  if (gcloud) out.push(gcloud);
  return [...new Set(out)];
}

const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** `doctor_metadata_probe_hosts` as `host:port` items (port 80 when omitted). */
export function parseProbeHosts(value: string): string[] {
  const out: string[] = [];
  for (const raw of value.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(raw);
    const port = m?.[2] === undefined ? 80 : Number(m[2]);
    if (!m || !HOST.test(m[1]!) || port < 1 || port > 65535) {
      throw new GateError(
        "config",
        `doctor_metadata_probe_hosts: ${JSON.stringify(raw.slice(0, 80))} is not host or host:port`,
      );
    }
    out.push(`${m[1]}:${port}`);
  }
  if (out.length > 8) {
    throw new GateError("config", "doctor_metadata_probe_hosts: at most 8 hosts");
  }
  return [...new Set(out)];
}

/** Net scopes for the probe: exactly those host:port pairs. */
export function probeHostScopes(value: string): string[] {
  return parseProbeHosts(value);
}
