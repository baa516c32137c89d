/**
 * The launch-time permission resolver. Deno permission scopes are literal
 * (no `~`, no `$HOME`, exact `unix:` paths), and several depend on the user's
 * config (socket path, endpoints, port). A role's launcher runs this first,
 * with read-only access, to turn its permission template into exact flags;
 * then it runs the role with those flags and nothing more.
 *
 *   resolve.js <role> <count> <template…> -- <role args…>
 *
 * Prints one resolved flag per line. Config errors are reported exactly as
 * the role would report them (same loader), with exit code 2.
 */
import {
  type CliSpec,
  envNamesFor,
  INSPECT_ENDPOINTS,
  type Invocation,
  loadInvocation,
  type Role,
} from "../shared/config.ts";
import { readEnv, readTextFileIfExists, reportError } from "../shared/cli.ts";
import { GateError } from "../shared/errors.ts";
import { GATE_CLI } from "../gate/cli.ts";
import { credentialSourceScopes } from "../gate/adc_sources.ts";
import { serviceDir, serviceFilePath } from "../gate/install_service.ts";
import { ALLOW_EXECUTABLES_ENV } from "../gate/adc_executable.ts";
import { parseResource } from "../gate/resources.ts";
import { PROXY_CLI } from "../proxy/cli.ts";
import { doctorEnvNames, doctorReadPaths, probeHostScopes } from "../proxy/doctor_scopes.ts";
import { KUBE_SETUP_CLI } from "../kube/setup_cli.ts";

const SPECS: Readonly<Partial<Record<Role, CliSpec>>> = {
  "gcp-gate": GATE_CLI,
  "gcp-metadata-proxy": PROXY_CLI,
  "gcp-kube-setup": KUBE_SETUP_CLI,
};

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

function hostPort(url: string): string {
  const u = new URL(url);
  const port = u.port || (u.protocol === "https:" ? "443" : "80");
  return `${u.hostname}:${port}`;
}

/** Follows symlinks to the file a write would really change (kubeconfig). */
function realTarget(path: string): string {
  try {
    return Deno.realPathSync(path);
  } catch {
    return path;
  }
}

/** The gate's service file path, when HOME says where it is. */
function serviceFileIfKnown(): string[] {
  const os = Deno.build.os;
  if (os !== "linux" && os !== "darwin") return [];
  try {
    return [serviceFilePath(os, readEnv)];
  } catch {
    return []; // no HOME: doctor reports that itself
  }
}

/**
 * The inspection-only API hosts one gate invocation needs: `accounts` the IAM
 * API; `can` the API of its `--resource` kind (none when it does not parse:
 * the command then fails before any request). The daemon and every other
 * subcommand get none of them.
 */
function inspectHosts(inv: Invocation): string[] {
  const e = inv.config.endpoints;
  const cmd = inv.positionals[0];
  if (cmd === "accounts") return [hostPort(e.iam)];
  if (cmd !== "can" || typeof inv.extras.resource !== "string") return [];
  try {
    const key = parseResource(inv.extras.resource).endpoint;
    return INSPECT_ENDPOINTS.includes(key) ? [hostPort(e[key])] : [];
  } catch {
    return [];
  }
}

/** Placeholder values for one invocation. */
export function placeholders(role: Role, inv: Invocation): Record<string, string[]> {
  const c = inv.config;
  const kube = realTarget(c.kubeconfig);
  // external_account ADC: its subject token file or URL host (gate only).
  const adcSources = role === "gcp-gate"
    ? credentialSourceScopes(c.credentials_candidates, readTextFileIfExists, {
      allowExecutables: readEnv(ALLOW_EXECUTABLES_ENV) === "1",
    })
    : { files: [], hosts: [], commands: [] };
  // `doctor` is a one-shot, read-only command with a few grants of its own;
  // every other invocation (the daemon, the long-running proxy) gets none of them.
  const doctor = inv.positionals[0] === "doctor";
  // A gate with profiles serves each profile's socket and none other (the
  // top-level socket_path is then only a default); without profiles, the one.
  const sockets = role === "gcp-gate" && c.profiles.length > 0
    ? [...new Set(c.profiles.map((p) => p.values.socket_path ?? c.socket_path))]
    : [c.socket_path];
  const gateDoctor = doctor && role === "gcp-gate";
  const proxyDoctor = doctor && role === "gcp-metadata-proxy";
  const all: Record<string, string[]> = {
    env: envNamesFor(role),
    config_path: c.config_path ? [c.config_path] : [],
    socket_path: sockets,
    socket_dir: [...new Set(sockets.map(dirname))],
    admin_socket_path: [c.admin_socket_path],
    admin_socket_dir: [dirname(c.admin_socket_path)],
    zenity_path: [c.zenity_path],
    osascript_path: [c.osascript_path],
    audit_dir: [dirname(c.audit_log)],
    audit_write_dir: [dirname(c.audit_log)],
    credentials_candidates: [...c.credentials_candidates],
    endpoint_hosts: [
      ...new Set(
        Object.entries(c.endpoints)
          .filter(([k]) => !(INSPECT_ENDPOINTS as readonly string[]).includes(k))
          // The PAM API only when a PAM entitlement is configured.
          .filter(([k]) => k !== "privilegedaccessmanager" || c.pam_entitlement !== undefined)
          .map(([, url]) => hostPort(url)),
      ),
    ],
    inspect_hosts: role === "gcp-gate" ? inspectHosts(inv) : [],
    port: [String(c.port)],
    kubeconfig: [...new Set([c.kubeconfig, kube])],
    kubeconfig_dir: [...new Set([dirname(c.kubeconfig), dirname(kube)])],
    credential_source_files: adcSources.files,
    credential_source_hosts: adcSources.hosts,
    credential_source_commands: adcSources.commands,
    // Only `gcp-gate install-service` (without --print) may write its unit:
    // the daemon itself never gets write access to its own service file.
    service_dir: role === "gcp-gate" && inv.positionals[0] === "install-service" &&
        inv.extras.print !== true && (Deno.build.os === "linux" || Deno.build.os === "darwin")
      ? [serviceDir(Deno.build.os, readEnv)]
      : [],
    // gcp-gate doctor: read (never write) its service file; stat the dialog programs.
    doctor_files: gateDoctor
      ? [
        ...serviceFileIfKnown(),
        c.zenity_path,
        c.osascript_path,
      ]
      : [],
    // gcp-metadata-proxy doctor: look for credentials in HOME and the gcloud
    // config dir, stat the socket directory, probe for another metadata server.
    doctor_reads: proxyDoctor ? doctorReadPaths(c.socket_path, readEnv) : [],
    doctor_hosts: proxyDoctor ? probeHostScopes(c.doctor_metadata_probe_hosts) : [],
    doctor_env: proxyDoctor ? doctorEnvNames() : [],
  };
  // The audit reader reads; nothing else (see AUDIT_READER_KEEPS).
  return role === "gcp-gate" && inv.positionals[0] === "audit" ? auditReaderOnly(all) : all;
}

/**
 * `gcp-gate audit` and `gcp-gate audit verify` only read the audit log: its
 * config and the audit directory, nothing else. No socket, no Google, no
 * dialog program, no write anywhere (a reader that could write could also
 * "repair" the log it checks). Every other placeholder, including ones added
 * later, comes out empty.
 */
const AUDIT_READER_KEEPS: ReadonlySet<string> = new Set(["env", "config_path", "audit_dir"]);

function auditReaderOnly(all: Record<string, string[]>): Record<string, string[]> {
  return Object.fromEntries(
    Object.entries(all).map(([k, v]) => [k, AUDIT_READER_KEEPS.has(k) ? v : []]),
  );
}

/**
 * Expands a template such as `--allow-net=unix:{socket_path},{endpoint_hosts}`.
 * A scope whose placeholder is empty disappears; a flag left with no scope is
 * dropped entirely (an empty `--allow-read=` would mean "everything").
 */
export function expandTemplate(
  template: string,
  values: Record<string, string[]>,
): string | undefined {
  const eq = template.indexOf("=");
  if (eq < 0) return template;
  const flag = template.slice(0, eq);
  const scopes: string[] = [];
  for (const scope of template.slice(eq + 1).split(",")) {
    const m = /\{([a-z_]+)\}/.exec(scope);
    if (!m) {
      scopes.push(scope);
      continue;
    }
    const vals = values[m[1]!];
    if (vals === undefined) throw new Error(`unknown placeholder {${m[1]}} in permission template`);
    for (const v of vals) {
      // A comma would split one scope into two grants, and a line break would
      // make the launcher read a second flag (say --allow-all): refuse both.
      if (/[\p{Cc},]/u.test(v)) {
        throw new GateError(
          "config",
          `path or host ${
            JSON.stringify(v)
          } contains a comma or a control character, which permission flags cannot carry safely; rename it`,
        );
      }
      scopes.push(scope.replace(m[0], v));
    }
  }
  const unique = [...new Set(scopes)];
  return unique.length === 0 ? undefined : `${flag}=${unique.join(",")}`;
}

/** Resolves a role's template for `args`. */
export function resolveFlags(
  role: Role,
  templates: readonly string[],
  args: readonly string[],
): string[] {
  const spec = SPECS[role];
  if (!spec) return [...templates];
  const inv = loadInvocation(spec, args, {
    env: readEnv,
    readTextFile: readTextFileIfExists,
    cwd: () => Deno.cwd(),
  });
  // Help and version load no config: only the table's static scopes remain
  // (a role's imports may still need those, e.g. env reads at import time).
  const values = inv.help || inv.version
    ? Object.fromEntries(Object.keys(placeholders(role, inv)).map((k) => [k, []]))
    : placeholders(role, inv);
  return templates.map((t) => expandTemplate(t, values)).filter((f): f is string =>
    f !== undefined
  );
}

if (import.meta.main) {
  const [role, countText, ...rest] = Deno.args;
  const count = Number(countText);
  const templates = rest.slice(0, count);
  const args = rest.slice(count + 1);
  try {
    const flags = resolveFlags(role as Role, templates, args);
    Deno.stdout.writeSync(new TextEncoder().encode(flags.join("\n") + "\n"));
  } catch (err) {
    Deno.exit(reportError(role ?? "gcp-gate", err));
  }
}
