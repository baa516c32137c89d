/**
 * The configuration schema (data): every key with its kind, help, roles and
 * default. It drives flags, environment names, the README's key table and
 * each role's env permission list (scripts/build.ts derives `--allow-env`
 * from it). The loader is in shared/config_load.ts.
 */

export type Role =
  | "gcp-gate"
  | "gcp-metadata-proxy"
  | "with-prod"
  | "gcp-kube-token"
  | "gcp-kube-setup";

export const ROLE_NAMES: readonly Role[] = [
  "gcp-gate",
  "gcp-metadata-proxy",
  "with-prod",
  "gcp-kube-token",
  "gcp-kube-setup",
];

/** What a value of a key must look like. */
export type Kind = "string" | "int" | "bool" | "path" | "url" | "email" | "enum" | "list";

/** Reads one environment variable; undefined when unset. */
export type EnvReader = (name: string) => string | undefined;

/** One key of {@linkcode CONFIG_SCHEMA}. */
export interface KeySpec {
  readonly kind: Kind;
  readonly help: string;
  readonly roles: readonly Role[];
  readonly min?: number;
  readonly max?: number;
  readonly values?: readonly string[];
  readonly default?: string | number | boolean | ((env: EnvReader) => string | undefined);
}

const GATE: Role = "gcp-gate";
const PROXY: Role = "gcp-metadata-proxy";
const WRAP: Role = "with-prod";
const SETUP: Role = "gcp-kube-setup";
const CONTAINER: readonly Role[] = [PROXY, WRAP];
const ALL_LOADING: readonly Role[] = [GATE, PROXY, WRAP, SETUP];

/** `$HOME`, or a path that does not exist when it is unset. */
export function home(env: EnvReader): string {
  return env("HOME") ?? "/nonexistent-home";
}

/** `$XDG_RUNTIME_DIR/<name>` when set, else `~/.<name>`. */
function runtimeDir(env: EnvReader, name: string): string {
  const xdg = env("XDG_RUNTIME_DIR");
  return xdg && xdg.startsWith("/") ? `${xdg}/${name}` : `${home(env)}/.${name}`;
}

/** Every key: TOML name (dotted for tables), with kebab-case flag and env name derived. */
export const CONFIG_SCHEMA = {
  project_id: {
    kind: "string",
    help: "Google Cloud project id",
    roles: [GATE, PROXY, WRAP],
  },
  service_account: {
    kind: "email",
    help: "service account the gate impersonates for dev tokens",
    roles: [GATE, PROXY],
  },
  prod_service_account: {
    kind: "email",
    help: "service account impersonated for prod tokens (default: the engineer's own ADC)",
    roles: [GATE],
  },
  pam_entitlement: {
    kind: "string",
    help:
      "Privileged Access Manager entitlement granted for each prod session: a full name (projects/, folders/ or organizations/<id>/locations/<loc>/entitlements/<id>) or a short id in project_id and pam_location (docs/pam.md)",
    roles: [GATE],
  },
  pam_location: {
    kind: "string",
    help: "location of a pam_entitlement given as a short id",
    roles: [GATE],
    default: "global",
  },
  pam_grant_duration_seconds: {
    kind: "int",
    help:
      "duration asked for each PAM grant (at most the entitlement's maximum); a prod session is capped to it, and the grant is withdrawn when the session ends",
    roles: [GATE],
    min: 300,
    max: 604800,
    default: 3600,
  },
  pam_wait_seconds: {
    kind: "int",
    help:
      "longest wait for a PAM grant to become active (a teammate's approval, activation) before the prod request fails",
    roles: [GATE],
    min: 10,
    max: 3000,
    default: 900,
  },
  require_reason: {
    kind: "bool",
    help: "refuse prod requests without a reason (with-prod --reason), before any dialog",
    roles: [GATE],
    default: false,
  },
  socket_path: {
    kind: "path",
    help: "the gate's Unix socket",
    roles: [GATE, ...CONTAINER],
    default: (env) => `${runtimeDir(env, "gcp-gate")}/gate.sock`,
  },
  admin_socket_path: {
    kind: "path",
    help: "the gate's admin socket for approvals (never mount it into a container)",
    roles: [GATE],
    default: (env) => `${runtimeDir(env, "gcp-gate-admin")}/admin.sock`,
  },
  port: {
    kind: "int",
    help: "metadata proxy port on 127.0.0.1 (0 picks a free port)",
    roles: [PROXY],
    min: 0,
    max: 65535,
    default: 8173,
  },
  max_connections: {
    kind: "int",
    help:
      "most concurrent connections to a metadata proxy, or to each gate socket (at the cap a silent, else the longest-idle, one is closed)",
    roles: [GATE, PROXY, WRAP],
    min: 4,
    max: 65536,
    default: 256,
  },
  idle_timeout_seconds: {
    kind: "int",
    help: "a metadata proxy or gate socket closes a keep-alive connection idle this long",
    roles: [GATE, PROXY, WRAP],
    min: 1,
    max: 3600,
    default: 30,
  },
  credentials_file: {
    kind: "path",
    help:
      "Application Default Credentials JSON (default: GOOGLE_APPLICATION_CREDENTIALS, then gcloud's ADC file)",
    roles: [GATE],
  },
  audit_log: {
    kind: "path",
    help: "audit log file (JSON lines)",
    roles: [GATE],
    default: (env) => {
      const state = env("XDG_STATE_HOME");
      return `${
        state && state.startsWith("/") ? state : `${home(env)}/.local/state`
      }/gcp-gate/audit.log`;
    },
  },
  audit_max_bytes: {
    kind: "int",
    help: "rotate the audit log at this size",
    roles: [GATE],
    min: 4096,
    max: 1 << 30,
    default: 10 * 1024 * 1024,
  },
  audit_keep: {
    kind: "int",
    help: "rotated audit logs to keep",
    roles: [GATE],
    min: 1,
    max: 100,
    default: 5,
  },
  max_token_ttl_seconds: {
    kind: "int",
    help: "longest dev token lifetime a caller may ask for",
    roles: [GATE],
    min: 60,
    max: 43200,
    default: 3600,
  },
  prod_token_ttl_seconds: {
    kind: "int",
    help:
      "life of each prod_service_account token; with-prod's session renews it while its lease holds (never above max_token_ttl_seconds, nor Google's default 3600 cap)",
    roles: [GATE],
    min: 60,
    max: 3600,
    default: 600,
  },
  session_ttl_seconds: {
    kind: "int",
    help:
      "longest life of a prod session opened by one approval (it ends earlier, with the with-prod that holds its lease)",
    roles: [GATE, WRAP],
    min: 300,
    max: 86400,
    default: 28800,
  },
  dialog_timeout_seconds: {
    kind: "int",
    help: "a desktop dialog or terminal prompt left unanswered this long denies",
    roles: [GATE],
    min: 5,
    max: 600,
    default: 60,
  },
  approval_timeout_seconds: {
    kind: "int",
    help: "how long a request waits in the approval queue",
    roles: [GATE],
    min: 5,
    max: 3600,
    default: 120,
  },
  approval_methods: {
    kind: "list",
    help: "approval methods to try, in order (dialog, terminal, queue)",
    roles: [GATE],
    values: ["dialog", "terminal", "queue"],
    default: "dialog,terminal,queue",
  },
  denial_cooldown_seconds: {
    kind: "int",
    help: "after a denial, refuse new prod requests for this long",
    roles: [GATE],
    min: 0,
    max: 3600,
    default: 5,
  },
  max_approvals_per_minute: {
    kind: "int",
    help: "prod approval requests allowed per minute",
    roles: [GATE],
    min: 1,
    max: 1000,
    default: 10,
  },
  zenity_path: {
    kind: "path",
    help:
      "zenity for the desktop approval dialog on Linux (absolute: a PATH lookup could be hijacked)",
    roles: [GATE],
    default: "/usr/bin/zenity",
  },
  osascript_path: {
    kind: "path",
    help: "osascript for the desktop approval dialog on macOS",
    roles: [GATE],
    default: "/usr/bin/osascript",
  },
  universe_domain: {
    kind: "string",
    help: "Google Cloud universe domain",
    roles: [GATE],
    default: "googleapis.com",
  },
  allow_writable_socket_dir: {
    kind: "bool",
    help:
      "DANGEROUS: let with-prod ask for prod access through a socket directory it can write (a same-uid process could replace the socket and keep your approved session); mount the directory read-only instead",
    roles: [WRAP],
    default: false,
  },
  zone: {
    kind: "string",
    help: "zone the metadata proxy reports for instance/zone",
    roles: [PROXY, WRAP],
    default: "us-central1-a",
  },
  doctor_metadata_probe_hosts: {
    kind: "string",
    help:
      "hosts (host or host:port, comma-separated) where `gcp-metadata-proxy doctor` looks for another metadata server that would bypass the gate",
    roles: [PROXY],
    default: "169.254.169.254,metadata.google.internal",
  },
  scopes: {
    kind: "string",
    help: "comma-separated OAuth scopes for prod tokens",
    roles: [WRAP],
    default: "https://www.googleapis.com/auth/cloud-platform",
  },
  kubeconfig: {
    kind: "path",
    help: "kubeconfig to patch (default: first path in KUBECONFIG, else ~/.kube/config)",
    roles: [SETUP],
    default: (env) => {
      const first = (env("KUBECONFIG") ?? "").split(":").find((p) => p !== "");
      return first ?? `${home(env)}/.kube/config`;
    },
  },
  "endpoints.oauth2": {
    kind: "url",
    help: "OAuth2 base URL (token at <url>/token, tokeninfo at <url>/tokeninfo)",
    roles: [GATE],
    default: "https://oauth2.googleapis.com",
  },
  "endpoints.iamcredentials": {
    kind: "url",
    help: "IAM Credentials API base URL",
    roles: [GATE],
    default: "https://iamcredentials.googleapis.com",
  },
  "endpoints.cloudresourcemanager": {
    kind: "url",
    help: "Cloud Resource Manager API base URL",
    roles: [GATE],
    default: "https://cloudresourcemanager.googleapis.com",
  },
  "endpoints.sts": {
    kind: "url",
    help: "Security Token Service base URL (workload identity federation)",
    roles: [GATE],
    default: "https://sts.googleapis.com",
  },
  "endpoints.iam": {
    kind: "url",
    help:
      "IAM API base URL (gcp-gate accounts lists service accounts; can tests them); granted only to accounts/can",
    roles: [GATE],
    default: "https://iam.googleapis.com",
  },
  "endpoints.storage": {
    kind: "url",
    help: "Cloud Storage JSON API base URL (gcp-gate can on buckets only)",
    roles: [GATE],
    default: "https://storage.googleapis.com",
  },
  "endpoints.pubsub": {
    kind: "url",
    help: "Pub/Sub API base URL (gcp-gate can on topics and subscriptions only)",
    roles: [GATE],
    default: "https://pubsub.googleapis.com",
  },
  "endpoints.bigquery": {
    kind: "url",
    help: "BigQuery API base URL (gcp-gate can on tables only)",
    roles: [GATE],
    default: "https://bigquery.googleapis.com",
  },
  "endpoints.privilegedaccessmanager": {
    kind: "url",
    help: "Privileged Access Manager API base URL (used only with pam_entitlement)",
    roles: [GATE],
    default: "https://privilegedaccessmanager.googleapis.com",
  },
  log_level: {
    kind: "enum",
    help: "debug, info, warn or error",
    roles: ALL_LOADING,
    values: ["debug", "info", "warn", "error"],
    default: "info",
  },
  log_format: {
    kind: "enum",
    help: "text or json (stderr)",
    roles: ALL_LOADING,
    values: ["text", "json"],
    default: "text",
  },
} as const satisfies Record<string, KeySpec>;

export type ConfigKey = keyof typeof CONFIG_SCHEMA;
/** Every key of the schema, in schema order. */
export const CONFIG_KEYS: readonly ConfigKey[] = Object.keys(CONFIG_SCHEMA) as ConfigKey[];
