// deno-lint-ignore-file no-console -- a docs script reports on stderr
/**
 * README sections generated from code, so docs and behaviour are the same data:
 *   deno run -A scripts/readme.ts --write   refresh them
 *   deno run -A scripts/readme.ts --check   exit 1 when README.md is stale
 */
import {
  CONFIG_SCHEMA,
  type ConfigKey,
  envName,
  flagName,
  PROFILE_KEYS,
} from "../shared/config.ts";

/** Replaces the body between `<!-- section:NAME -->` and `<!-- /section:NAME -->`. */
export function replaceSection(text: string, name: string, body: string): string {
  const open = `<!-- section:${name} -->`;
  const close = `<!-- /section:${name} -->`;
  const a = text.indexOf(open);
  const b = text.indexOf(close);
  if (a < 0 || b < a) throw new Error(`no section ${name} in this file`);
  return `${text.slice(0, a + open.length)}\n${body.trim()}\n${text.slice(b)}`;
}

/** The body of a section (between its markers), trimmed. */
export function sectionBody(text: string, name: string): string | undefined {
  const open = `<!-- section:${name} -->`;
  const a = text.indexOf(open);
  const b = text.indexOf(`<!-- /section:${name} -->`);
  return a < 0 || b < a ? undefined : text.slice(a + open.length, b).trim();
}

/** The config keys table, from CONFIG_SCHEMA. */
export function configKeysMarkdown(): string {
  const rows = [
    "| key | flag / environment | used by | default | meaning |",
    "|---|---|---|---|---|",
  ];
  for (const key of Object.keys(CONFIG_SCHEMA) as ConfigKey[]) {
    const s = CONFIG_SCHEMA[key] as {
      help: string;
      roles: readonly string[];
      default?: unknown;
      min?: number;
      max?: number;
    };
    const def = s.default === undefined
      ? "—"
      : typeof s.default === "function"
      ? "(see meaning)"
      : `\`${s.default}\``;
    const range = s.min !== undefined ? ` (${s.min}…${s.max})` : "";
    // Keys a [profiles.<name>] table may set (docs/profiles.md).
    const perProfile = (PROFILE_KEYS as readonly string[]).includes(key) ? "; per profile" : "";
    const tomlKey = key.includes(".")
      ? `\`[${key.split(".")[0]}] ${key.split(".")[1]}\``
      : `\`${key}\``;
    rows.push(
      `| ${tomlKey} | \`--${flagName(key)}\` / \`${envName(key)}\` | ${
        s.roles.join(", ")
      } | ${def} | ${s.help}${range}${perProfile} |`,
    );
  }
  return [
    rows.join("\n"),
    "",
    "Defaults that depend on the user: `socket_path` is `$XDG_RUNTIME_DIR/gcp-gate/gate.sock` (else",
    "`~/.gcp-gate/gate.sock`); `admin_socket_path` is `$XDG_RUNTIME_DIR/gcp-gate-admin/admin.sock` (else",
    "`~/.gcp-gate-admin/admin.sock`) — a different directory, because containers mount the socket's",
    "directory; `audit_log` is `$XDG_STATE_HOME/gcp-gate/audit.log` (else `~/.local/state/gcp-gate/audit.log`),",
    "outside the mounted directory for the same reason; `credentials_file` is, in order,",
    "`$GOOGLE_APPLICATION_CREDENTIALS`, `$CLOUDSDK_CONFIG/application_default_credentials.json`,",
    "`~/.config/gcloud/application_default_credentials.json`; `kubeconfig` is the first path in",
    "`$KUBECONFIG`, else `~/.kube/config`. Paths may start with `~/`; in a config file they must",
    "otherwise be absolute. Endpoints are full base URLs (Private Service Connect users set them;",
    "the tests point them at a local fake); the gate's network permission is derived from them at",
    "launch.",
  ].join("\n");
}

/** Every generated section by name. Sections owned by other code register here. */
export async function generatedSections(): Promise<Record<string, string>> {
  const { markdownTable } = await import("./build.ts");
  return { "config-keys": configKeysMarkdown(), permissions: markdownTable() };
}

/** README.md and every page under docs/: where generated sections may live. */
export function docFiles(root: string): string[] {
  const pages = [...Deno.readDirSync(`${root}/docs`)]
    .filter((e) => e.isFile && e.name.endsWith(".md"))
    .map((e) => `${root}/docs/${e.name}`)
    .sort();
  return [`${root}/README.md`, ...pages];
}

/**
 * Every generated section refreshed in whichever file holds it. A section
 * that no file holds, or that two files hold, is an error: the table would
 * silently go stale or disagree with itself.
 */
export async function refreshDocs(
  root: string,
): Promise<Map<string, { before: string; after: string }>> {
  const files = new Map<string, { before: string; after: string }>();
  for (const path of docFiles(root)) {
    const text = Deno.readTextFileSync(path);
    files.set(path, { before: text, after: text });
  }
  for (const [name, body] of Object.entries(await generatedSections())) {
    const holders = [...files.entries()].filter(([, f]) =>
      sectionBody(f.after, name) !== undefined
    );
    if (holders.length !== 1) {
      throw new Error(
        `section ${name} must be in exactly one of README.md, docs/*.md (found ${holders.length})`,
      );
    }
    const [, f] = holders[0]!;
    f.after = replaceSection(f.after, name, body);
  }
  return files;
}

if (import.meta.main) {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const files = await refreshDocs(root);
  const stale = [...files.entries()].filter(([, f]) => f.after !== f.before);
  if (Deno.args.includes("--write")) {
    for (const [path, f] of stale) Deno.writeTextFileSync(path, f.after);
    console.error(
      stale.length === 0 ? "readme: up to date" : "readme: generated sections refreshed",
    );
  } else if (stale.length > 0) {
    console.error(
      `readme: generated sections are stale in ${
        stale.map(([p]) => p.slice(root.length + 1)).join(", ")
      }; run: deno run -A scripts/readme.ts --write`,
    );
    Deno.exit(1);
  }
}
