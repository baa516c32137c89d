/** Validation of one raw value against its key's spec, and flattening of TOML tables. */
import { GateError } from "./errors.ts";
import type { LoadConfigDeps } from "./config_types.ts";
import {
  CONFIG_KEYS as KEYS,
  CONFIG_SCHEMA,
  type ConfigKey,
  type EnvReader,
  home,
  type KeySpec,
} from "./config_schema.ts";

/** A value as given (flag, env, file or default), before validation. */
export type Raw = string | number | boolean | string[];

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

export function validate(
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

export function flattenToml(
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

const noEnv: EnvReader = () => undefined;

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

/** A raw value and where it came from (for error messages). */
export type Given = { raw: Raw; where: string };

/** Every key's validated value: given, or its default. */
export function resolveValues(
  merged: ReadonlyMap<ConfigKey, Given>,
  opts: {
    keys: readonly ConfigKey[];
    readsEnv: boolean;
    deps: Pick<LoadConfigDeps, "env" | "cwd">;
  },
): Record<string, unknown> {
  const { keys, deps } = opts;
  const out: Record<string, unknown> = {};
  for (const key of KEYS) {
    const spec: KeySpec = CONFIG_SCHEMA[key];
    const given = merged.get(key);
    let value: unknown;
    if (given) {
      value = validate(key, given.raw, given.where, deps.env, deps.cwd);
    } else if (spec.default !== undefined) {
      // Defaults of keys this role does not use must not read its environment.
      const env = keys.includes(key) && opts.readsEnv ? deps.env : noEnv;
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
  return out;
}
