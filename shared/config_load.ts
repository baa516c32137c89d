/**
 * Loading: flags > environment (GCP_GATE_*) > TOML file > defaults, each
 * value validated against the schema, into one frozen {@linkcode Config}.
 * Nothing else reads Deno.env for settings.
 */
import { parse as parseToml, TomlError } from "smol-toml";
import { type FlagSpec, parseFlags } from "./args.ts";
import { GateError } from "./errors.ts";
import type { LogFormat, LogLevel } from "./log.ts";
import {
  credentialsCandidates,
  defaultConfigFile,
  envName,
  flagName,
  keysFor,
} from "./config_keys.ts";
import {
  type ProfileTable,
  profileTables,
  type RawProfile,
  validProfile,
} from "./config_profiles.ts";
import { type ConfigKey, type EnvReader, home } from "./config_schema.ts";
import type {
  ApprovalMethod,
  CliSpec,
  Config,
  Endpoints,
  Invocation,
  LoadConfigDeps,
} from "./config_types.ts";
import { flattenToml, type Given, type Raw, resolveValues } from "./config_validate.ts";

export { MAX_SOCKET_PATH_BYTES } from "./config_validate.ts";

const noEnv: EnvReader = () => undefined;

/** A config file's top-level keys and its raw `[profiles.*]` tables. */
interface FileContents {
  readonly values: Map<ConfigKey, Raw>;
  readonly profiles: readonly RawProfile[];
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

type Opt = { -readonly [K in keyof FlagSpec]: FlagSpec[K] };
type FlagValues = ReturnType<typeof parseFlags>["values"];
/** The flags a role's command line takes: help, version, config keys, role extras. */
function flagOptions(spec: CliSpec, keys: readonly ConfigKey[]): Record<string, Opt> {
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
  return options;
}

/** What the file, the environment and the flags give, merged by precedence. */
interface Sources {
  merged: Map<ConfigKey, Given>;
  configFile: string | undefined;
  configPath: string | undefined;
  profiles: readonly ProfileTable[];
}

/** Reads the config file, then the environment, then the flags (later ones win). */
function mergeSources(
  keys: readonly ConfigKey[],
  values: FlagValues,
  deps: LoadConfigDeps,
): Sources {
  const out: Sources = {
    merged: new Map(),
    configFile: undefined,
    configPath: undefined,
    profiles: [],
  };
  const { merged } = out;
  const explicitFlag = typeof values.config === "string" ? values.config : undefined;
  const explicit = explicitFlag ?? deps.env("GCP_GATE_CONFIG");
  let path = explicit ?? defaultConfigFile(deps.env);
  if (path.startsWith("~/")) path = `${home(deps.env)}${path.slice(1)}`;
  if (!path.startsWith("/")) path = `${deps.cwd()}/${path}`;
  out.configPath = path;
  const fromFile = readConfigFile(path, explicit !== undefined, deps);
  if (fromFile) {
    out.configFile = path;
    out.profiles = fromFile.profiles.map((p) => validProfile(p, path, deps));
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
  return out;
}

function endpointsOf(out: Record<string, unknown>): Endpoints {
  return Object.freeze({
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
}

/** The frozen {@linkcode Config} from validated values (a generated-style field list). */
function buildConfig(
  out: Record<string, unknown>,
  src: Omit<Sources, "merged"> & { role: Config["role"]; candidatesEnv: EnvReader },
): Config {
  const credentialsFile = out.credentials_file as string | undefined;
  return Object.freeze({
    role: src.role,
    config_file: src.configFile,
    config_path: src.configPath,
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
      credentialsFile ? [credentialsFile] : credentialsCandidates(src.candidatesEnv),
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
    endpoints: endpointsOf(out),
    log_level: out.log_level as LogLevel,
    log_format: out.log_format as LogFormat,
    profiles: Object.freeze(src.profiles),
  });
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
  const keys = spec.loadsConfig ? keysFor(spec.role) : [];
  const parsed = parseFlags(args, {
    options: flagOptions(spec, keys),
    allowPositionals: spec.positionals ?? false,
  });
  const { values, positionals } = parsed;
  const help = values.help === true;
  const version = values.version === true;
  const readsEnv = spec.loadsConfig && !help && !version;
  const sources: Sources = readsEnv ? mergeSources(keys, values, deps) : {
    merged: new Map(),
    configFile: undefined,
    configPath: undefined,
    profiles: [],
  };
  const out = resolveValues(sources.merged, { keys, readsEnv: !help && !version, deps });
  const config = buildConfig(out, {
    ...sources,
    role: spec.role,
    candidatesEnv: readsEnv ? deps.env : noEnv,
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
