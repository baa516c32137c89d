/** Names derived from the schema: flags, environment variables, default paths. */
import {
  CONFIG_KEYS,
  CONFIG_SCHEMA,
  type ConfigKey,
  type EnvReader,
  home,
  type Role,
} from "./config_schema.ts";

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
  return CONFIG_KEYS.filter((k) => (CONFIG_SCHEMA[k].roles as readonly Role[]).includes(role));
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
