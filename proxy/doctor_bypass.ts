/**
 * `gcp-metadata-proxy doctor`, the bypass checks: anything in the container
 * that hands a Google client credentials without asking the gate. Another
 * metadata server (the VM's own, at 169.254.169.254), credential variables,
 * gcloud's ADC file and credential store, key files in HOME.
 *
 * Everything here is hostile input (the container's files): symlinks are not
 * followed, the HOME scan is bounded in depth, entries and bytes read, and
 * only paths and variable names are ever reported, never contents or values.
 */
import type { CheckResult } from "../shared/doctor_report.ts";
import { fail, pass, shellArg, warn } from "../shared/doctor_report.ts";
import type { RawAnswer } from "../shared/raw_http.ts";
import type { PathFacts } from "../shared/socket_mode.ts";
import { CLOUDSDK_AUTH_ENV, CREDENTIAL_ENV, gcloudConfigDir } from "./doctor_scopes.ts";

/** Collaborators of the bypass checks. */
export interface BypassDeps {
  readonly env: (name: string) => string | undefined;
  readonly lstat: (path: string) => PathFacts | undefined;
  /** GET `path` on host:port (no HTTP proxy, short deadline); rejects when unreachable. */
  readonly probe: (hostPort: string, path: string) => Promise<RawAnswer>;
  readonly readDir: (
    path: string,
  ) => Iterable<{ name: string; isFile: boolean; isDirectory: boolean; isSymlink: boolean }>;
  /** At most `maxBytes` of a file, or undefined when it is larger or unreadable. */
  readonly readSmallFile: (path: string, maxBytes: number) => string | undefined;
}

/** Probes for another metadata server at each of `hosts` (host:port), in parallel. */
export async function checkOtherMetadataServers(
  hosts: readonly string[],
  deps: Pick<BypassDeps, "probe">,
): Promise<CheckResult[]> {
  const id = "metadata-bypass";
  const answers = await Promise.all(hosts.map(async (hp) => {
    try {
      const res = await deps.probe(hp, "/computeMetadata/v1/");
      return { hp, flavor: res.headers["metadata-flavor"] === "Google" };
    } catch (err) {
      // A sandbox refusal is a bug in our grants, not "nothing there": report it.
      if (err instanceof Deno.errors.NotCapable) throw err;
      return { hp, flavor: false };
    }
  }));
  const found = answers.filter((a) => a.flavor).map((a) => a.hp);
  if (found.length === 0) {
    return [pass(id, `no other metadata server answers at ${hosts.join(", ")}`)];
  }
  return found.map((hp) => {
    const host = hp.replace(/:\d+$/, "");
    const isIp = /^\d+\.\d+\.\d+\.\d+$/.test(host);
    return warn(
      id,
      `a metadata server answers at ${hp}: a client that ignores GCE_METADATA_HOST gets this machine's own service account, bypassing the gate`,
      isIp
        ? `on the host: sudo iptables -I DOCKER-USER -d ${host}/32 -j REJECT (and for name lookups add "--add-host=metadata.google.internal:127.0.0.1" to the container's runArgs)`
        : `add "--add-host=${host}:127.0.0.1" to the container's runArgs (devcontainer.json), and block its address on the host: sudo iptables -I DOCKER-USER -d 169.254.169.254/32 -j REJECT`,
    );
  });
}

/** Credential variables: names only, values never read into the report. */
export function checkCredentialEnv(deps: Pick<BypassDeps, "env">): CheckResult[] {
  const out: CheckResult[] = [];
  const set = CREDENTIAL_ENV.filter((n) => deps.env(n));
  if (set.includes("GOOGLE_APPLICATION_CREDENTIALS")) {
    out.push(fail(
      "credential-env",
      "GOOGLE_APPLICATION_CREDENTIALS is set: every Google library uses that file instead of the metadata server",
      "unset GOOGLE_APPLICATION_CREDENTIALS (and drop it from devcontainer.json containerEnv/remoteEnv)",
    ));
  }
  const others = set.filter((n) => n !== "GOOGLE_APPLICATION_CREDENTIALS");
  if (others.length) {
    out.push(warn(
      "credential-env",
      `${others.join(", ")} set: tools that read ${
        others.length > 1 ? "them" : "it"
      } skip the gate`,
      `unset ${others.join(" ")}`,
    ));
  }
  const auth = CLOUDSDK_AUTH_ENV.filter((n) => deps.env(n));
  out.push(
    auth.length
      ? warn(
        "cloudsdk-auth-env",
        `${auth.join(", ")} set: gcloud takes its credential from ${
          auth.length > 1 ? "these" : "this"
        }, not from the metadata server`,
        `unset ${auth.join(" ")}`,
      )
      : pass("cloudsdk-auth-env", "no CLOUDSDK_AUTH_* credential variables"),
  );
  if (set.length === 0) {
    out.unshift(
      pass("credential-env", "no credential variables (GOOGLE_APPLICATION_CREDENTIALS, …)"),
    );
  }
  return out;
}

/** gcloud's ADC file and credential store in this container. */
export function checkGcloudFiles(
  deps: Pick<BypassDeps, "env" | "lstat" | "readDir">,
): CheckResult[] {
  const dirs = [
    ...new Set([gcloudConfigDir(deps.env), homeGcloud(deps.env)].filter((d): d is string => !!d)),
  ];
  const adc = dirs.map((d) => `${d}/application_default_credentials.json`).filter((p) =>
    deps.lstat(p)
  );
  const store: string[] = [];
  for (const d of dirs) {
    for (const f of ["credentials.db", "access_tokens.db"]) {
      if (deps.lstat(`${d}/${f}`)) store.push(`${d}/${f}`);
    }
    const legacy = `${d}/legacy_credentials`;
    if (deps.lstat(legacy)?.isDirectory && hasEntries(legacy, deps)) store.push(legacy);
  }
  return [
    adc.length
      ? fail(
        "adc-file",
        `${
          adc.join(", ")
        }: an ADC file in the container takes precedence over the metadata server in every library`,
        `rm ${
          adc.map(shellArg).join(" ")
        } (if it is mounted from the host, remove that mount instead)`,
      )
      : pass(
        "adc-file",
        `no application_default_credentials.json under ${dirs.join(", ") || "(no HOME)"}`,
      ),
    store.length
      ? warn(
        "gcloud-credentials",
        `gcloud credential store present (${
          store.join(", ")
        }): gcloud uses a logged-in account before the metadata server`,
        `rm -rf ${
          store.map(shellArg).join(" ")
        } (if mounted from the host, remove that mount instead)`,
      )
      : pass(
        "gcloud-credentials",
        "no gcloud credential store (credentials.db, legacy_credentials)",
      ),
  ];
}

function homeGcloud(env: (name: string) => string | undefined): string | undefined {
  const home = env("HOME");
  return home && home.startsWith("/") ? `${home}/.config/gcloud` : undefined;
}

function hasEntries(dir: string, deps: Pick<BypassDeps, "readDir">): boolean {
  try {
    for (const _ of deps.readDir(dir)) return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable) throw err;
  }
  return false;
}

/** Bounds of the HOME scan: a hostile HOME must not make the doctor slow. */
export const SCAN_LIMITS = Object.freeze({ depth: 4, entries: 5000, fileBytes: 64 * 1024 });

/** Directories that hold caches and dependencies, never a user's key file. */
const SKIP_DIRS = new Set([
  "node_modules",
  ".git",
  ".cache",
  ".npm",
  ".deno",
  ".cargo",
  ".rustup",
  ".vscode-server",
  ".cursor-server",
  "gcloud",
]);

const CREDENTIAL_TYPES = new Set([
  "service_account",
  "authorized_user",
  "external_account",
  "impersonated_service_account",
  "external_account_authorized_user",
]);

/** True when `text` is a Google credential JSON that carries a secret. */
export function isCredentialJson(text: string): boolean {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return false;
  }
  if (j === null || typeof j !== "object" || Array.isArray(j)) return false;
  const o = j as Record<string, unknown>;
  return typeof o.type === "string" && CREDENTIAL_TYPES.has(o.type) &&
    ["private_key", "refresh_token", "credential_source", "source_credentials"].some((k) => k in o);
}

/** Service-account keys and other credential JSON files under HOME (bounded, no symlinks). */
export function checkKeyFiles(
  deps: Pick<BypassDeps, "env" | "readDir" | "readSmallFile">,
): CheckResult {
  const id = "key-files";
  const home = deps.env("HOME");
  if (!home || !home.startsWith("/") || home === "/") return pass(id, "no HOME to scan");
  const found: string[] = [];
  let visited = 0;
  let truncated = false;
  const walk = (dir: string, depth: number): void => {
    try {
      walkEntries(dir, depth);
    } catch (err) {
      if (err instanceof Deno.errors.NotCapable) throw err;
      // unreadable or vanished: skip it
    }
  };
  const walkEntries = (dir: string, depth: number): void => {
    for (const e of deps.readDir(dir)) {
      if (++visited > SCAN_LIMITS.entries) {
        truncated = true;
        return;
      }
      // Never follow a symlink: it could lead anywhere, or loop.
      if (e.isSymlink) continue;
      const p = `${dir}/${e.name}`;
      if (e.isDirectory) {
        if (depth < SCAN_LIMITS.depth && !SKIP_DIRS.has(e.name)) walk(p, depth + 1);
      } else if (e.isFile && e.name.endsWith(".json")) {
        const text = deps.readSmallFile(p, SCAN_LIMITS.fileBytes);
        if (text !== undefined && isCredentialJson(text)) found.push(p);
      }
      if (truncated) return;
    }
  };
  walk(home, 1);
  const scope = `${home} (depth ${SCAN_LIMITS.depth}${
    truncated ? `, stopped after ${SCAN_LIMITS.entries} entries` : ""
  })`;
  if (found.length === 0) return pass(id, `no credential JSON files in ${scope}`);
  const shown = found.slice(0, 5);
  return warn(
    id,
    `${found.length} Google credential file${
      found.length > 1 ? "s" : ""
    } (key or refresh token) in ${scope}: ${shown.join(", ")}${
      found.length > shown.length ? ", …" : ""
    }`,
    `move ${found.length > 1 ? "them" : "it"} out of the container: rm ${
      shown.map(shellArg).join(" ")
    }`,
  );
}
