/**
 * Configuration for every role: flags > environment (GCP_GATE_*) > TOML file >
 * defaults. Parsed once into a frozen object; nothing else reads Deno.env for
 * settings. The schema below is also the source of each role's env
 * permission list (scripts/build.ts derives `--allow-env` from it).
 */
import { parse as parseToml, TomlError } from "smol-toml";
import { type FlagSpec, parseFlags } from "./args.ts";
import { GateError } from "./errors.ts";
import type { LogFormat, LogLevel } from "./log.ts";

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

type Kind = "string" | "int" | "bool" | "path" | "url" | "email" | "enum" | "list";

/** Reads one environment variable; undefined when unset. */
export type EnvReader = (name: string) => string | undefined;

interface KeySpec {
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

function home(env: EnvReader): string {
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
      "most concurrent connections to a metadata proxy (at the cap the longest-idle one is closed)",
    roles: [PROXY, WRAP],
    min: 4,
    max: 65536,
    default: 256,
  },
  idle_timeout_seconds: {
    kind: "int",
    help: "a metadata proxy closes a keep-alive connection idle this long",
    roles: [PROXY, WRAP],
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
const KEYS = Object.keys(CONFIG_SCHEMA) as ConfigKey[];

/**
 * Keys a `[profiles.<name>]` table may set; every other key is the gate's
 * alone (one ADC, one audit log, one admin socket). Making a key per-profile
 * is one line here (and reading it from the profile in gate/profile_stack.ts).
 */
export const PROFILE_KEYS = [
  "socket_path",
  "project_id",
  "service_account",
  "prod_service_account",
  "max_token_ttl_seconds",
  "session_ttl_seconds",
  "approval_methods",
  "dialog_timeout_seconds",
  "denial_cooldown_seconds",
  "max_approvals_per_minute",
  "prod_token_ttl_seconds",
  "pam_entitlement",
  "pam_location",
  "pam_grant_duration_seconds",
  "pam_wait_seconds",
  "require_reason",
] as const satisfies readonly ConfigKey[];

export type ProfileKey = typeof PROFILE_KEYS[number];

/** Profile names: short, lower-case, safe in a log line, a path and a dialog. */
export const PROFILE_NAME_RE: RegExp = /^[a-z0-9-]{1,32}$/;

/** Most profiles one config may define (each is a socket, a cache and a limiter). */
export const MAX_PROFILES = 64;

/** One `[profiles.<name>]` table: only the keys it sets, validated. */
export interface ProfileTable {
  readonly name: string;
  readonly values: Readonly<Partial<Pick<Config, ProfileKey>>>;
}

/** Endpoint base URLs, without trailing slash. */
export interface Endpoints {
  readonly oauth2: string;
  readonly iamcredentials: string;
  readonly cloudresourcemanager: string;
  readonly sts: string;
  /** Used only by `gcp-gate accounts` / `can` (see INSPECT_ENDPOINTS). */
  readonly iam: string;
  readonly storage: string;
  readonly pubsub: string;
  readonly bigquery: string;
  readonly privilegedaccessmanager: string;
}

/**
 * Endpoints only the inspection subcommands (`accounts`, `can`) call: the
 * launcher grants their hosts to those subcommands alone, never to the daemon.
 */
export const INSPECT_ENDPOINTS: readonly (keyof Endpoints)[] = [
  "iam",
  "storage",
  "pubsub",
  "bigquery",
];

/** The endpoints the daemon itself calls (every endpoint but the inspection-only ones). */
export type CoreEndpoints = Omit<Endpoints, "iam" | "storage" | "pubsub" | "bigquery">;

export type ApprovalMethod = "dialog" | "terminal" | "queue";

/** The parsed, validated, frozen configuration. */
export interface Config {
  readonly role: Role;
  /** The TOML file that was read, if any. */
  readonly config_file: string | undefined;
  /** The TOML path that was looked for (read or not); undefined when none was. */
  readonly config_path: string | undefined;
  readonly project_id: string | undefined;
  readonly service_account: string | undefined;
  readonly prod_service_account: string | undefined;
  readonly pam_entitlement: string | undefined;
  readonly pam_location: string;
  readonly pam_grant_duration_seconds: number;
  readonly pam_wait_seconds: number;
  readonly require_reason: boolean;
  readonly socket_path: string;
  readonly admin_socket_path: string;
  readonly port: number;
  readonly max_connections: number;
  readonly idle_timeout_seconds: number;
  /** Explicit ADC path, or undefined to search {@linkcode credentialsCandidates}. */
  readonly credentials_file: string | undefined;
  /** The ADC paths the gate tries, in order. */
  readonly credentials_candidates: readonly string[];
  readonly audit_log: string;
  readonly audit_max_bytes: number;
  readonly audit_keep: number;
  readonly max_token_ttl_seconds: number;
  readonly prod_token_ttl_seconds: number;
  readonly session_ttl_seconds: number;
  readonly dialog_timeout_seconds: number;
  readonly approval_timeout_seconds: number;
  readonly approval_methods: readonly ApprovalMethod[];
  readonly denial_cooldown_seconds: number;
  readonly max_approvals_per_minute: number;
  readonly zenity_path: string;
  readonly osascript_path: string;
  readonly universe_domain: string;
  readonly zone: string;
  /** with-prod: proceed when the socket directory is writable (see shared/socket_trust.ts). */
  readonly allow_writable_socket_dir: boolean;
  readonly scopes: string;
  readonly doctor_metadata_probe_hosts: string;
  readonly kubeconfig: string;
  readonly endpoints: Endpoints;
  readonly log_level: LogLevel;
  readonly log_format: LogFormat;
  /**
   * `[profiles.<name>]` tables in file order; empty when the file has none
   * (then the gate serves one implicit profile from the top-level keys).
   */
  readonly profiles: readonly ProfileTable[];
}

/** `project_id` → `--project-id`. */
export function flagName(key: ConfigKey): string {
  return key.replaceAll(/[._]/g, "-");
}

/** `endpoints.oauth2` → `GCP_GATE_ENDPOINTS_OAUTH2`. */
export function envName(key: ConfigKey): string {
  return `GCP_GATE_${key.replaceAll(".", "_").toUpperCase()}`;
}

/** Keys a role accepts as flags and environment variables. */
export function keysFor(role: Role): ConfigKey[] {
  return KEYS.filter((k) => (CONFIG_SCHEMA[k].roles as readonly Role[]).includes(role));
}

/** Environment variables outside GCP_GATE_* that defaults may read. */
const DEFAULT_ENV: Readonly<Partial<Record<Role, readonly string[]>>> = {
  "gcp-gate": [
    "HOME",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "XDG_STATE_HOME",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "CLOUDSDK_CONFIG",
  ],
  "gcp-metadata-proxy": ["HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME"],
  "with-prod": ["HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME"],
  "gcp-kube-setup": ["HOME", "XDG_CONFIG_HOME", "KUBECONFIG"],
};

/** Every environment variable `loadConfig` may read for `role`. */
export function envNamesFor(role: Role): string[] {
  if (role === "gcp-kube-token") return [];
  return [...keysFor(role).map(envName), "GCP_GATE_CONFIG", ...(DEFAULT_ENV[role] ?? [])];
}

/** ADC locations, in the order Google's own libraries search them. */
export function credentialsCandidates(env: EnvReader): string[] {
  const out: string[] = [];
  const gac = env("GOOGLE_APPLICATION_CREDENTIALS");
  if (gac) out.push(gac);
  const sdk = env("CLOUDSDK_CONFIG");
  if (sdk) out.push(`${sdk}/application_default_credentials.json`);
  out.push(`${home(env)}/.config/gcloud/application_default_credentials.json`);
  return out;
}

/** The config file used when `--config` and GCP_GATE_CONFIG are absent. */
export function defaultConfigFile(env: EnvReader): string {
  const xdg = env("XDG_CONFIG_HOME");
  return `${xdg && xdg.startsWith("/") ? xdg : `${home(env)}/.config`}/gcp-gate/config.toml`;
}

/** A role-specific flag that is not a config key (e.g. `--dry-run`). */
export interface ExtraFlag {
  readonly type: "string" | "boolean";
  readonly short?: string;
  readonly multiple?: boolean;
  readonly help: string;
}

/** What a role's command line looks like besides config keys. */
export interface CliSpec {
  readonly role: Role;
  readonly summary: string;
  /** Usage lines after the program name, e.g. `[options] -- <command>`. */
  readonly usage: readonly string[];
  readonly extras?: Readonly<Record<string, ExtraFlag>>;
  readonly positionals?: boolean;
  /** Whether this role reads a config file and GCP_GATE_* (kube-token does not). */
  readonly loadsConfig: boolean;
}

/** Reads a file's text; undefined when it does not exist. */
export type FileReader = (path: string) => string | undefined;

/** Dependencies of {@linkcode loadConfig}. */
export interface LoadConfigDeps {
  env: EnvReader;
  readTextFile: FileReader;
  cwd: () => string;
}

/** Result of parsing a command line and loading config. */
export interface Invocation {
  readonly config: Config;
  readonly extras: Readonly<Record<string, string | boolean | string[] | undefined>>;
  readonly positionals: readonly string[];
  readonly help: boolean;
  readonly version: boolean;
}

type Raw = string | number | boolean | string[];

const noEnv: EnvReader = () => undefined;

function describeKind(spec: KeySpec): string {
  switch (spec.kind) {
    case "int":
      return `an integer from ${spec.min} to ${spec.max}`;
    case "bool":
      return "true or false";
    case "enum":
      return `one of ${spec.values?.join(", ")}`;
    case "list":
      return `a comma-separated list of ${spec.values?.join(", ")}`;
    case "path":
      return "an absolute path (~/ allowed)";
    case "url":
      return "an http(s) URL";
    case "email":
      return "a service account email";
    default:
      return "a non-empty string";
  }
}

function validate(
  key: ConfigKey,
  raw: Raw,
  where: string,
  env: EnvReader,
  cwd: () => string,
): string | number | boolean | string[] {
  const spec: KeySpec = CONFIG_SCHEMA[key];
  const bad = (): never => {
    throw new GateError(
      "config",
      `${where}: "${key}" must be ${describeKind(spec)}, got ${JSON.stringify(raw)}`,
    );
  };
  if (spec.kind === "int") {
    const n = typeof raw === "number"
      ? raw
      : typeof raw === "string" && /^-?\d+$/.test(raw.trim())
      ? Number(raw)
      : NaN;
    if (!Number.isSafeInteger(n) || n < (spec.min ?? -Infinity) || n > (spec.max ?? Infinity)) {
      bad();
    }
    return n;
  }
  if (spec.kind === "bool") {
    if (typeof raw === "boolean") return raw;
    const t = typeof raw === "string" ? raw.trim().toLowerCase() : "";
    if (t === "true" || t === "1") return true;
    if (t === "false" || t === "0") return false;
    return bad();
  }
  if (typeof raw !== "string") return bad();
  const value = raw.trim();
  if (value === "") bad();
  switch (spec.kind) {
    case "enum":
      if (!spec.values?.includes(value)) bad();
      return value;
    case "list": {
      const items = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
      if (items.length === 0 || items.some((i) => !spec.values?.includes(i))) bad();
      return [...new Set(items)];
    }
    case "path": {
      // Paths are resolved here, once: Deno permission scopes are literal, so
      // `~` must never reach them unexpanded.
      // Control characters have no business in a path, and a line break
      // could smuggle an extra flag into a launcher.
      if (/\p{Cc}/u.test(value)) bad();
      let p = value.startsWith("~/") ? `${home(env)}${value.slice(1)}` : value;
      if (!p.startsWith("/")) {
        if (where.startsWith("config file")) bad();
        p = `${cwd()}/${p}`;
      }
      return p.replace(/\/+$/, "") || "/";
    }
    case "url": {
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        return bad();
      }
      if (url.protocol !== "https:" && url.protocol !== "http:") bad();
      if (url.search || url.hash || url.username || url.password) bad();
      return url.href.replace(/\/+$/, "");
    }
    case "email":
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(value)) bad();
      return value;
    default:
      return value;
  }
}

function flattenToml(
  table: Record<string, unknown>,
  file: string,
  prefix = "",
): Map<ConfigKey, Raw> {
  const out = new Map<ConfigKey, Raw>();
  for (const [k, v] of Object.entries(table)) {
    const full = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Date)) {
      if (!KEYS.some((key) => key.startsWith(full + "."))) {
        throw new GateError("config", `config file ${file}: unknown table [${full}]`);
      }
      for (const [ik, iv] of flattenToml(v as Record<string, unknown>, file, full)) out.set(ik, iv);
      continue;
    }
    if (!(KEYS as string[]).includes(full)) {
      throw new GateError(
        "config",
        `config file ${file}: unknown key "${full}" (known keys: ${KEYS.join(", ")})`,
      );
    }
    if (Array.isArray(v) && v.every((x) => typeof x === "string")) {
      out.set(full as ConfigKey, (v as string[]).join(","));
    } else if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") {
      out.set(full as ConfigKey, v);
    } else {
      throw new GateError(
        "config",
        `config file ${file}: key "${full}" has an unsupported value type`,
      );
    }
  }
  return out;
}

/** A config file's top-level keys and its raw `[profiles.*]` tables. */
interface FileContents {
  readonly values: Map<ConfigKey, Raw>;
  readonly profiles: readonly { name: string; values: Map<ConfigKey, Raw> }[];
}

/** Splits `[profiles.<name>]` tables off a parsed file, checking names and keys. */
function profileTables(
  raw: unknown,
  file: string,
): { name: string; values: Map<ConfigKey, Raw> }[] {
  if (raw === undefined) return [];
  const isTable = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Date);
  if (!isTable(raw)) {
    throw new GateError(
      "config",
      `config file ${file}: "profiles" must be tables [profiles.<name>]`,
    );
  }
  const names = Object.keys(raw);
  if (names.length > MAX_PROFILES) {
    throw new GateError("config", `config file ${file}: more than ${MAX_PROFILES} profiles`);
  }
  return names.map((name) => {
    const table = raw[name];
    if (!PROFILE_NAME_RE.test(name)) {
      throw new GateError(
        "config",
        `config file ${file}: profile name ${
          JSON.stringify(name.slice(0, 40))
        } must be 1-32 characters of a-z, 0-9 and -`,
      );
    }
    if (!isTable(table)) {
      throw new GateError("config", `config file ${file}: [profiles.${name}] must be a table`);
    }
    const values = flattenToml(table, file);
    for (const key of values.keys()) {
      if (!(PROFILE_KEYS as readonly string[]).includes(key)) {
        throw new GateError(
          "config",
          `config file ${file}: [profiles.${name}] cannot set "${key}" (per-profile keys: ${
            PROFILE_KEYS.join(", ")
          })`,
        );
      }
    }
    return { name, values };
  });
}

function readConfigFile(
  path: string,
  explicit: boolean,
  deps: LoadConfigDeps,
): FileContents | undefined {
  let text: string | undefined;
  try {
    text = deps.readTextFile(path);
  } catch (err) {
    throw new GateError(
      "config",
      `config file ${path}: cannot be read (${(err as Error).message})`,
    );
  }
  if (text === undefined) {
    if (explicit) {
      throw new GateError(
        "config",
        `config file ${path} does not exist; create it or drop --config`,
      );
    }
    return undefined;
  }
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split("\n")[0] ?? "invalid TOML";
      throw new GateError(
        "config",
        `config file ${path}: line ${err.line}, column ${err.column}: ${first}`,
      );
    }
    throw new GateError("config", `config file ${path}: invalid TOML`);
  }
  const { profiles, ...rest } = doc;
  return { values: flattenToml(rest, path), profiles: profileTables(profiles, path) };
}

/** Validates one profile table's values as the top-level keys are validated. */
function validProfile(
  table: { name: string; values: Map<ConfigKey, Raw> },
  file: string,
  deps: LoadConfigDeps,
): ProfileTable {
  const values: Record<string, unknown> = {};
  for (const [key, raw] of table.values) {
    const v = validate(
      key,
      raw,
      `config file ${file} [profiles.${table.name}]`,
      deps.env,
      deps.cwd,
    );
    values[key] = Array.isArray(v) ? Object.freeze(v) : v;
  }
  return Object.freeze({ name: table.name, values: Object.freeze(values) });
}

/**
 * The longest Unix socket path the platform takes, in bytes: `sun_path` is
 * 108 bytes on Linux and 104 on macOS, and one of them is the final NUL.
 * Deno refuses a longer path only when the socket is used, with a bare
 * TypeError, long after the config was read.
 */
export const MAX_SOCKET_PATH_BYTES: number = Deno.build.os === "darwin" ? 103 : 107;

/** The keys that name a Unix socket some role listens on or connects to. */
const SOCKET_KEYS: readonly ConfigKey[] = ["socket_path", "admin_socket_path"];

/** Refuses a socket path the kernel cannot take, saying which one and by how much. */
function checkSocketPathLength(key: ConfigKey, path: string, where: string): void {
  const bytes = new TextEncoder().encode(path).length;
  if (bytes <= MAX_SOCKET_PATH_BYTES) return;
  const os = Deno.build.os === "darwin" ? "macOS" : "Linux";
  throw new GateError(
    "config",
    `${where}: "${key}" ${JSON.stringify(path)} is ${bytes} bytes, ${
      bytes - MAX_SOCKET_PATH_BYTES
    } more than a Unix socket path may have on ${os} (${MAX_SOCKET_PATH_BYTES}); choose a shorter path`,
  );
}

/**
 * Parses `args` for `spec.role` and loads its configuration.
 * Throws GateError `usage` (exit 2) or `config` (exit 2).
 */
export function loadInvocation(
  spec: CliSpec,
  args: readonly string[],
  deps: LoadConfigDeps,
): Invocation {
  const role = spec.role;
  const keys = spec.loadsConfig ? keysFor(role) : [];
  type Opt = { -readonly [K in keyof FlagSpec]: FlagSpec[K] };
  const options: Record<string, Opt> = {
    help: { type: "boolean", short: "h" },
    version: { type: "boolean" },
  };
  if (spec.loadsConfig) options.config = { type: "string" };
  for (const key of keys) options[flagName(key)] = { type: "string" };
  for (const [name, extra] of Object.entries(spec.extras ?? {})) {
    const opt: Opt = { type: extra.type };
    if (extra.short) opt.short = extra.short;
    if (extra.multiple) opt.multiple = true;
    options[name] = opt;
  }
  const parsed = parseFlags(args, { options, allowPositionals: spec.positionals ?? false });
  const { values, positionals } = parsed;
  const help = values.help === true;
  const version = values.version === true;

  const merged = new Map<ConfigKey, { raw: Raw; where: string }>();
  let configFile: string | undefined;
  let configPath: string | undefined;
  let profiles: readonly ProfileTable[] = [];
  if (spec.loadsConfig && !help && !version) {
    const explicitFlag = typeof values.config === "string" ? values.config : undefined;
    const explicit = explicitFlag ?? deps.env("GCP_GATE_CONFIG");
    let path = explicit ?? defaultConfigFile(deps.env);
    if (path.startsWith("~/")) path = `${home(deps.env)}${path.slice(1)}`;
    if (!path.startsWith("/")) path = `${deps.cwd()}/${path}`;
    configPath = path;
    const fromFile = readConfigFile(path, explicit !== undefined, deps);
    if (fromFile) {
      configFile = path;
      profiles = fromFile.profiles.map((p) => validProfile(p, path, deps));
      for (const [k, v] of fromFile.values) {
        // Keys of other roles are allowed (one file may serve several roles)
        // and still validated, so a typo in any key is reported.
        merged.set(k, { raw: v, where: `config file ${path}` });
      }
    }
    for (const key of keys) {
      const v = deps.env(envName(key));
      if (v !== undefined && v !== "") {
        merged.set(key, { raw: v, where: `environment ${envName(key)}` });
      }
    }
    for (const key of keys) {
      const v = values[flagName(key)];
      if (typeof v === "string") merged.set(key, { raw: v, where: `flag --${flagName(key)}` });
    }
  }

  const out: Record<string, unknown> = {};
  for (const key of KEYS) {
    const spec: KeySpec = CONFIG_SCHEMA[key];
    const given = merged.get(key);
    let value: unknown;
    if (given) {
      value = validate(key, given.raw, given.where, deps.env, deps.cwd);
    } else if (spec.default !== undefined) {
      // Defaults of keys this role does not use must not read its environment.
      const env = keys.includes(key) && !help && !version ? deps.env : noEnv;
      const d = typeof spec.default === "function" ? spec.default(env) : spec.default;
      value = d === undefined ? undefined : validate(key, d, "default", deps.env, deps.cwd);
    }
    // Checked only for the role that uses the socket: a long admin socket
    // path in a shared config file must not stop the container's proxy.
    if (typeof value === "string" && SOCKET_KEYS.includes(key) && keys.includes(key)) {
      checkSocketPathLength(key, value, given?.where ?? "default (from XDG_RUNTIME_DIR or HOME)");
    }
    out[key] = value;
  }

  const endpoints: Endpoints = Object.freeze({
    oauth2: out["endpoints.oauth2"] as string,
    iamcredentials: out["endpoints.iamcredentials"] as string,
    cloudresourcemanager: out["endpoints.cloudresourcemanager"] as string,
    sts: out["endpoints.sts"] as string,
    iam: out["endpoints.iam"] as string,
    storage: out["endpoints.storage"] as string,
    pubsub: out["endpoints.pubsub"] as string,
    bigquery: out["endpoints.bigquery"] as string,
    privilegedaccessmanager: out["endpoints.privilegedaccessmanager"] as string,
  });
  const credentialsFile = out.credentials_file as string | undefined;
  const config: Config = Object.freeze({
    role,
    config_file: configFile,
    config_path: configPath,
    project_id: out.project_id as string | undefined,
    service_account: out.service_account as string | undefined,
    prod_service_account: out.prod_service_account as string | undefined,
    pam_entitlement: out.pam_entitlement as string | undefined,
    pam_location: out.pam_location as string,
    pam_grant_duration_seconds: out.pam_grant_duration_seconds as number,
    pam_wait_seconds: out.pam_wait_seconds as number,
    require_reason: out.require_reason as boolean,
    socket_path: out.socket_path as string,
    admin_socket_path: out.admin_socket_path as string,
    port: out.port as number,
    max_connections: out.max_connections as number,
    idle_timeout_seconds: out.idle_timeout_seconds as number,
    credentials_file: credentialsFile,
    credentials_candidates: Object.freeze(
      credentialsFile
        ? [credentialsFile]
        : credentialsCandidates(spec.loadsConfig && !help && !version ? deps.env : noEnv),
    ),
    audit_log: out.audit_log as string,
    audit_max_bytes: out.audit_max_bytes as number,
    audit_keep: out.audit_keep as number,
    max_token_ttl_seconds: out.max_token_ttl_seconds as number,
    prod_token_ttl_seconds: out.prod_token_ttl_seconds as number,
    session_ttl_seconds: out.session_ttl_seconds as number,
    dialog_timeout_seconds: out.dialog_timeout_seconds as number,
    approval_timeout_seconds: out.approval_timeout_seconds as number,
    approval_methods: Object.freeze(out.approval_methods as ApprovalMethod[]),
    denial_cooldown_seconds: out.denial_cooldown_seconds as number,
    max_approvals_per_minute: out.max_approvals_per_minute as number,
    zenity_path: out.zenity_path as string,
    osascript_path: out.osascript_path as string,
    universe_domain: out.universe_domain as string,
    zone: out.zone as string,
    allow_writable_socket_dir: out.allow_writable_socket_dir as boolean,
    scopes: out.scopes as string,
    doctor_metadata_probe_hosts: out.doctor_metadata_probe_hosts as string,
    kubeconfig: out.kubeconfig as string,
    endpoints,
    log_level: out.log_level as LogLevel,
    log_format: out.log_format as LogFormat,
    profiles: Object.freeze(profiles),
  });

  const extras: Record<string, string | boolean | string[] | undefined> = {};
  for (const name of Object.keys(spec.extras ?? {})) {
    extras[name] = values[name] as string | boolean | string[] | undefined;
  }
  return Object.freeze({
    config,
    extras: Object.freeze(extras),
    positionals: Object.freeze([...positionals]),
    help,
    version,
  });
}

/** The `--help` text for a role, generated from the schema. */
export function helpText(spec: CliSpec, version: string): string {
  const lines = [
    `${spec.role} ${version} — ${spec.summary}`,
    "",
    "Usage:",
    ...spec.usage.map((u) => `  ${spec.role} ${u}`),
    "",
    "Options:",
  ];
  const pad = (s: string): string => s.padEnd(36);
  for (const [name, extra] of Object.entries(spec.extras ?? {})) {
    const short = extra.short ? `-${extra.short}, ` : "";
    lines.push(
      `  ${pad(`${short}--${name}${extra.type === "string" ? " <value>" : ""}`)}${extra.help}`,
    );
  }
  if (spec.loadsConfig) {
    lines.push(`  ${pad("--config <file>")}TOML config file (env GCP_GATE_CONFIG)`);
    for (const key of keysFor(spec.role)) {
      const s: KeySpec = CONFIG_SCHEMA[key];
      const def = typeof s.default === "function"
        ? ""
        : s.default !== undefined
        ? ` [default: ${s.default}]`
        : "";
      lines.push(`  ${pad(`--${flagName(key)} <value>`)}${s.help}${def} (env ${envName(key)})`);
    }
  }
  lines.push(`  ${pad("-h, --help")}show this help`, `  ${pad("--version")}show the version`);
  return lines.join("\n");
}
