/**
 * Configuration for every role: flags > environment (GCP_GATE_*) > TOML file >
 * defaults, parsed once into a frozen object. This module is the import path
 * of every caller; the parts live beside it:
 * - shared/config_schema.ts: the schema (data: every key, its kind, roles, default);
 * - shared/config_types.ts: the Config and command-line types;
 * - shared/config_keys.ts: flag and env names, default paths;
 * - shared/config_validate.ts, shared/config_profiles.ts, shared/config_load.ts: the logic.
 */
import { envName, flagName, keysFor } from "./config_keys.ts";
import { CONFIG_SCHEMA, type KeySpec } from "./config_schema.ts";
import type { CliSpec } from "./config_types.ts";

export {
  CONFIG_SCHEMA,
  type ConfigKey,
  type EnvReader,
  type Role,
  ROLE_NAMES,
} from "./config_schema.ts";
export {
  credentialsCandidates,
  defaultConfigFile,
  envName,
  envNamesFor,
  flagName,
  keysFor,
} from "./config_keys.ts";
export {
  MAX_PROFILES,
  PROFILE_KEYS,
  PROFILE_NAME_RE,
  type ProfileKey,
  type ProfileTable,
} from "./config_profiles.ts";
export type {
  ApprovalMethod,
  CliSpec,
  Config,
  CoreEndpoints,
  Endpoints,
  ExtraFlag,
  FileReader,
  Invocation,
  LoadConfigDeps,
} from "./config_types.ts";
export { INSPECT_ENDPOINTS } from "./config_types.ts";
export { loadInvocation, MAX_SOCKET_PATH_BYTES } from "./config_load.ts";

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
