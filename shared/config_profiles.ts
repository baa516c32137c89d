/** `[profiles.<name>]` tables: which keys they may set, their names, their validation. */
import { GateError } from "./errors.ts";
import type { Config, LoadConfigDeps } from "./config_types.ts";
import type { ConfigKey } from "./config_schema.ts";
import { flattenToml, type Raw, validate } from "./config_validate.ts";

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
  "max_connections",
  "idle_timeout_seconds",
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

/** A profile table as read from the file, not validated yet. */
export interface RawProfile {
  name: string;
  values: Map<ConfigKey, Raw>;
}

/** Splits `[profiles.<name>]` tables off a parsed file, checking names and keys. */
export function profileTables(
  raw: unknown,
  file: string,
): RawProfile[] {
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

/** Validates one profile table's values as the top-level keys are validated. */
export function validProfile(
  table: RawProfile,
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
