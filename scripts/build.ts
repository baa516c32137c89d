// deno-lint-ignore-file no-console -- a build script's output is its product
/**
 * Builds every role into dist/ from ONE permission table (below).
 *
 *   deno task build [--quiet] [--markdown]
 *
 * (scripts/readme.ts --write puts the --markdown table into README.md.)
 *
 * Two forms from the same table:
 * - bundled (default): `deno bundle` → dist/lib/<role>.js, plus a launcher
 *   dist/bin/<role> running `deno run --no-config --cached-only --no-prompt
 *   <flags>`. Roles whose scopes depend on config are resolved at launch by
 *   dist/lib/resolve.js (see scripts/resolve.ts).
 * - compiled (when DENORT_BIN names a denort binary): `deno compile
 *   --no-prompt <flags>` with the scopes resolved now, for this user.
 */
import type { Role } from "../shared/config.ts";
import { resolveFlags } from "./resolve.ts";
import { bundle, exists, gitCommit, run, warmCache } from "./build_steps.ts";

export { exists } from "./build_steps.ts";

/** One permission flag with its scopes and the reason it is granted. */
export interface Grant {
  readonly flag: string;
  /** Scopes; `{placeholder}`s are resolved from config at launch. Empty = the bare flag. */
  readonly scopes: readonly string[];
  readonly why: string;
}

export interface RoleBuild {
  readonly entry: string;
  /** True when scopes need the launch-time resolver (they depend on config). */
  readonly resolve: boolean;
  /**
   * Shell lines the bundled launcher runs first (normalise a variable before
   * `${VAR}` scopes expand, raise a limit); compiled builds have no launcher.
   */
  readonly prelude?: readonly string[];
  readonly grants: readonly Grant[];
}

/** THE permission table. The README's table is generated from it (`--markdown`). */
export const PERMISSIONS: Readonly<Record<Role, RoleBuild>> = {
  "gcp-gate": {
    entry: "gate/main.ts",
    resolve: true,
    grants: [
      {
        flag: "--allow-read",
        scopes: [
          "{config_path}",
          "{credentials_candidates}",
          "{socket_dir}",
          "{admin_socket_dir}",
          "{audit_dir}",
          "{service_dir}",
          "{credential_source_files}",
          "{doctor_files}",
        ],
        why:
          "its config, the ADC file (and an external_account's subject token file or executable output_file), its socket and audit directories (and, for install-service only, the service directory; for doctor only, the service file and the dialog programs, to report whether they exist)",
      },
      {
        flag: "--allow-write",
        scopes: ["{socket_dir}", "{admin_socket_dir}", "{audit_write_dir}", "{service_dir}"],
        why:
          "create the private socket directories, the sockets and the audit log; install-service only: write its unit/agent. `gcp-gate audit` gets none of these (nor net, nor run): it only reads its config and the audit directory",
      },
      {
        flag: "--allow-net",
        scopes: [
          "unix:{socket_path}",
          "unix:{admin_socket_path}",
          "{endpoint_hosts}",
          "{credential_source_hosts}",
          "{inspect_hosts}",
        ],
        why:
          "serve its sockets (and probe them for a live gate); reach only the configured Google endpoints (and an external_account's subject token URL); `accounts` alone also reaches `[endpoints] iam`, `can` alone the one API its --resource names (`iam`, `storage`, `pubsub` or `bigquery`)",
      },
      {
        flag: "--deny-net",
        scopes: ["169.254.169.254", "metadata.google.internal", "metadata"],
        why: "never ask a metadata server for credentials, even if an endpoint is misconfigured",
      },
      {
        flag: "--allow-env",
        scopes: [
          "{env}",
          "DISPLAY",
          "WAYLAND_DISPLAY",
          "GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES",
        ],
        why:
          "its GCP_GATE_* settings and the variables that locate ADC (fetch honours proxy variables without an env grant); DISPLAY/WAYLAND_DISPLAY tell whether a desktop approval dialog can be shown; Google's opt-in for executable-sourced credentials",
      },
      {
        flag: "--allow-run",
        scopes: ["{zenity_path}", "{osascript_path}", "{credential_source_commands}"],
        why:
          "show the prod approval dialog (zenity on Linux, osascript on macOS), by absolute path so PATH cannot substitute another program; an executable-sourced external_account's program (its absolute path, only with GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1)",
      },
      {
        flag: "--allow-sys",
        scopes: ["hostname", "uid"],
        why: "name the host in re-login hints; check socket directory ownership",
      },
      {
        flag: "--unstable-no-legacy-abort",
        scopes: [],
        why:
          "not a permission: request.signal then aborts only when a client disconnects (cancelling its wait for an approval), not after every answer",
      },
    ],
  },
  "gcp-metadata-proxy": {
    entry: "proxy/main.ts",
    resolve: true,
    grants: [
      {
        flag: "--allow-read",
        scopes: ["{config_path}", "{socket_path}", "{socket_dir}", "{doctor_reads}"],
        why:
          "its config; connect to the gate socket; stat the socket's directory (owner, mode) to refuse a socket another user could replace. doctor only: HOME and gcloud's config directory, to find credentials that would bypass the gate (names reported, contents never)",
      },
      {
        flag: "--allow-write",
        scopes: ["{socket_path}"],
        why:
          "connect to the gate socket (Deno checks write on the socket path); rename it onto itself (a no-op) to tell a read-only mount of its directory",
      },
      {
        flag: "--allow-net",
        scopes: ["127.0.0.1:{port}", "unix:{socket_path}", "{doctor_hosts}"],
        why:
          "listen on its loopback port; talk to the gate socket and nothing else. doctor only: probe doctor_metadata_probe_hosts (default 169.254.169.254:80, metadata.google.internal:80) for a metadata server that would bypass the gate",
      },
      {
        flag: "--allow-env",
        scopes: ["{env}", "{doctor_env}"],
        why:
          "its GCP_GATE_* settings. doctor only: the GCE_METADATA_* and proxy variables, and the credential variables that would bypass the gate (reported by name, values never printed)",
      },
      {
        flag: "--allow-sys",
        scopes: ["uid"],
        why:
          "refuse a gate socket that is not owned by the uid it runs as (planted by another user); doctor compares it with the socket's owner too",
      },
    ],
  },
  "with-prod": {
    entry: "wrap/main.ts",
    resolve: false,
    grants: [
      {
        flag: "--allow-all",
        scopes: [],
        why:
          "mapping a connection to its process reads /proc, which Deno allows only with --allow-all; it also covers FFI, for the kernel's sock_diag lookup of a connection's socket",
      },
    ],
  },
  "gcp-kube-token": {
    entry: "kube/token_main.ts",
    resolve: false,
    // A scheme in GCE_METADATA_HOST is a common slip (Go breaks on it too);
    // Deno would refuse a URL as a net scope before our code could explain.
    prelude: ['[ -z "${GCE_METADATA_HOST:-}" ] || GCE_METADATA_HOST=${GCE_METADATA_HOST#http://}'],
    grants: [
      {
        flag: "--allow-net",
        scopes: ["${GCE_METADATA_HOST:-127.0.0.1:8173}"],
        why:
          "fetch the token from the metadata server named by GCE_METADATA_HOST (expanded by the launcher)",
      },
      {
        flag: "--allow-env",
        scopes: ["GCE_METADATA_HOST", "KUBERNETES_EXEC_INFO"],
        why: "where the metadata server is; kubectl's exec info",
      },
    ],
  },
  "gcp-kube-setup": {
    entry: "kube/setup_main.ts",
    resolve: true,
    grants: [
      {
        flag: "--allow-read",
        scopes: ["{config_path}", "{kubeconfig_dir}"],
        why: "its config; the kubeconfig and its backup",
      },
      {
        flag: "--allow-write",
        scopes: ["{kubeconfig_dir}"],
        why: "write the kubeconfig atomically (temp file + rename) and its backup",
      },
      {
        flag: "--allow-env",
        scopes: ["{env}"],
        why: "its GCP_GATE_* settings, HOME and KUBECONFIG",
      },
      {
        flag: "--ignore-env",
        scopes: ["LOG_TOKENS", "LOG_STREAM"],
        why:
          "npm:yaml's debug switches read as unset: they would dump the kubeconfig, keys included, to the terminal",
      },
    ],
  },
};

/** The flag templates for `role`, in table order. */
export function templatesFor(role: Role): string[] {
  return PERMISSIONS[role].grants.map((
    g,
  ) => (g.scopes.length ? `${g.flag}=${g.scopes.join(",")}` : g.flag));
}

/**
 * The README's permission table, generated from {@linkcode PERMISSIONS}.
 * Columns are padded the way `deno fmt` lays out Markdown tables, so the
 * README section stays byte-identical after formatting (a test compares them).
 */
export function markdownTable(): string {
  const header = ["executable", "permission", "scopes", "why"];
  const rows: string[][] = [];
  for (const [role, b] of Object.entries(PERMISSIONS)) {
    for (const g of b.grants) {
      const scopes = g.scopes.length
        ? g.scopes.map((s) => `\`${s}\``).join(", ")
        : g.flag.startsWith("--allow-")
        ? "(all)"
        : "(runtime flag, grants nothing)";
      rows.push([`\`${role}\``, `\`${g.flag}\``, scopes, g.why.replaceAll("|", "\\|")]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

const RUN_FLAGS = ["--no-config", "--cached-only", "--no-prompt"];

function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'"'"'`)}'`;
}

/**
 * The POSIX sh launcher for a bundled role. `denoPath` (the builder's deno)
 * is tried after the package's own; packages for other machines leave it out.
 */
export function launcherScript(role: Role, denoPath?: string): string {
  const b = PERMISSIONS[role];
  const templates = templatesFor(role);
  const head = [
    "#!/bin/sh",
    `# ${role} launcher, generated by scripts/build.ts from its permission table. Do not edit.`,
    "set -eu",
    // Shell built-ins only on the common path: each fork costs ~1 ms on every
    // kubectl call. readlink runs only when the launcher is reached via a symlink.
    "self=$0",
    'case $self in */*) ;; *) self=$(command -v -- "$self" || echo "./$self") ;; esac',
    '[ ! -L "$self" ] || self=$(readlink -f -- "$self")',
    "pkg=${self%/*}/..",
    "lib=$pkg/lib",
    // Which Deno: GCP_GATE_DENO, else the package's own (npm puts its `deno`
    // dependency in <pkg>/node_modules, or hoists it beside <pkg>; the Feature
    // installs it where npm would; when npm skipped deno's postinstall the
    // binary is only in its @deno/<platform> package), else the builder's,
    // else PATH. The package's own comes before the builder's path: an
    // installed package must not run whatever deno sits at the build
    // machine's path. Globs, not forks: this runs on every kubectl call.
    "deno=${GCP_GATE_DENO:-}",
    `[ -n "$deno" ] || for deno in "$pkg/node_modules/deno/deno" "$pkg/../deno/deno" "$pkg"/node_modules/@deno/*/deno "$pkg"/../@deno/*/deno ${
      denoPath === undefined ? "" : `${shQuote(denoPath)} `
    }''; do [ ! -x "$deno" ] || break; done`,
    `[ -n "$deno" ] && [ -x "$deno" ] || deno=$(command -v deno) || { echo "${role}: deno not found; install it with: npm i -g deno@${Deno.version.deno}" >&2; exit 1; }`,
    ...(b.prelude ?? []),
  ];
  if (!b.resolve) {
    // Scopes here may use ${VAR:-default}: double quotes let the shell expand them.
    const flags = templates.map((t) => `"${t}"`).join(" ");
    return [...head, `exec "$deno" run ${RUN_FLAGS.join(" ")} ${flags} "$lib/${role}.js" "$@"`, ""]
      .join("\n");
  }
  return [
    ...head,
    "# Resolve config-dependent scopes (read-only, no network), then run with exactly those.",
    `flags=$("$deno" run ${
      RUN_FLAGS.join(" ")
    } --allow-read --allow-env "$lib/resolve.js" ${role} ${templates.length} ${
      templates.map(shQuote).join(" ")
    } -- "$@") || exit $?`,
    "IFS='\n'",
    "set -f",
    `exec "$deno" run ${RUN_FLAGS.join(" ")} $flags "$lib/${role}.js" "$@"`,
    "",
  ].join("\n");
}

/** The role's flags as its launcher would resolve them for this user's config now. */
function resolvedForUser(role: Role): string {
  try {
    return resolveFlags(role, templatesFor(role), []).map((f) => `    ${f}`).join("\n");
  } catch (err) {
    return `    (cannot resolve with your config: ${(err as Error).message})`;
  }
}

async function main(): Promise<void> {
  const args = new Set(Deno.args);
  if (args.has("--markdown")) {
    console.log(markdownTable());
    return;
  }
  const quiet = args.has("--quiet");
  const say = (s: string): void => {
    if (!quiet) console.error(s);
  };
  const root = new URL("..", import.meta.url).pathname;
  Deno.chdir(root);
  Deno.mkdirSync("dist/bin", { recursive: true });
  Deno.mkdirSync("dist/lib", { recursive: true });
  const commit = await gitCommit();
  const denort = Deno.env.get("DENORT_BIN");
  if (!denort) {
    say(
      "build: DENORT_BIN not set — compiled executables need denort, which cannot be downloaded here; building the bundled form (same permission flags).",
    );
  }

  const roles = (Object.keys(PERMISSIONS) as Role[]).filter((r) => {
    const ok = exists(PERMISSIONS[r].entry);
    if (!ok) say(`build: ${r}: skipped (${PERMISSIONS[r].entry} does not exist yet)`);
    return ok;
  });
  await warmCache(roles.map((r) => PERMISSIONS[r].entry), commit, quiet);
  await Promise.all(
    roles.map((r) => bundle(PERMISSIONS[r].entry, `dist/lib/${r}.js`, commit, quiet)),
  );
  for (const role of roles) {
    const bin = `dist/bin/${role}`;
    if (denort) {
      const flags = PERMISSIONS[role].resolve
        ? resolveFlags(role, templatesFor(role), [])
        : templatesFor(role).map((t) => t.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, "$1"));
      await run([
        Deno.execPath(),
        "compile",
        "--quiet",
        "--no-prompt",
        "--no-config",
        ...flags,
        "-o",
        bin,
        `dist/lib/${role}.js`,
      ], quiet);
      say(`build: ${role}: compiled → ${bin}\n  ${flags.join("\n  ") || "(no permissions)"}`);
    } else {
      const tmp = `${bin}.${Deno.pid}.tmp`;
      Deno.writeTextFileSync(tmp, launcherScript(role, Deno.execPath()), { mode: 0o755 });
      Deno.chmodSync(tmp, 0o755);
      Deno.renameSync(tmp, bin);
      say(`build: ${role}: bundled → ${bin}\n  ${templatesFor(role).join("\n  ")}`);
      if (!quiet && PERMISSIONS[role].resolve) {
        say(`  resolved for you now:\n${resolvedForUser(role)}`);
      }
    }
  }
}

if (import.meta.main) await main();
