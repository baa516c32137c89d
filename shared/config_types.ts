/** The types of the parsed configuration and of a role's command line. */
import type { LogFormat, LogLevel } from "./log.ts";
import type { ProfileTable } from "./config_profiles.ts";
import type { EnvReader, Role } from "./config_schema.ts";

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
