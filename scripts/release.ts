// deno-lint-ignore-file no-console -- a release script's output is its product
/**
 * Release artifacts into dist/release/ (or --out):
 *
 *   deno task release [--bundled-only] [--target linux-x64,linux-arm64,darwin-arm64] [--out DIR]
 *   deno task release --feature [--feature-dir DIR]
 *
 * - `gcp-gate-<version>-bundled.tar.gz`: every role as bundled JS + launchers
 *   (bin/, lib/). Needs Deno 2.9.6 on the target; scopes that depend on
 *   config (socket path, endpoints, port, kubeconfig) are resolved by the
 *   launcher at each start, from the config the role will load.
 * - `devcontainer-feature-gcp-gate-<version>.tgz`: the Dev Container Feature
 *   with its payload (container-side roles only, never the gate).
 * - `<target>/<role>` compiled with `deno compile --target --no-prompt` and the
 *   permission table's flags, for the roles whose flags do NOT depend on
 *   config (PERMISSIONS[role].resolve === false): a compiled executable bakes
 *   its flags in at compile time, and baking one user's socket path or
 *   endpoints into a download would be wrong for everyone else. Those
 *   roles ship in the bundled form. `${VAR:-default}` scopes bake the default.
 * - `gcp-gate-<version>.tgz`: an npm package (`npm pack`): `npm i -g
 *   ./gcp-gate-<version>.tgz` puts the five launchers on PATH; it depends on
 *   the exact Deno version from npm, and its launchers run the package's own
 *   Deno (never the build machine's path). See scripts/npm_package.ts.
 * - `SHA256SUMS` over everything above (`sha256sum -c SHA256SUMS`).
 *
 * `deno compile` needs `denort` for each target, which is downloaded from
 * Deno's servers (unreachable on our machines). Use DENORT_BIN (host target
 * only) or a cached `denort-<triple>.zip` under $DENO_DIR/dl/release/v<deno>/;
 * without one the release stops before building anything, naming DENORT_BIN.
 *
 * `--feature` writes the feature folder with its payload to
 * .devcontainer/gcp-gate-feature/ (the example devcontainer.json uses it).
 */
import { exists, launcherScript, PERMISSIONS, templatesFor } from "./build.ts";
import { writeNpmPackage } from "./npm_package.ts";
import type { Role } from "../shared/config.ts";
import { VERSION } from "../shared/version.ts";

/** Release targets: our name → Rust target triple (deno compile --target). */
export const TARGETS: Readonly<Record<string, string>> = {
  "linux-x64": "x86_64-unknown-linux-gnu",
  "linux-arm64": "aarch64-unknown-linux-gnu",
  "darwin-arm64": "aarch64-apple-darwin",
};

/** Roles that run inside the devcontainer (the Feature installs these, never the gate). */
export const CONTAINER_ROLES: readonly Role[] = [
  "gcp-metadata-proxy",
  "with-prod",
  "gcp-kube-token",
  "gcp-kube-setup",
];

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const FEATURE_SRC = `${ROOT}/devcontainer/feature`;
const FEATURE_FILES = ["devcontainer-feature.json", "install.sh", "gcp-gate-start.sh"];

/** Roles compiled into standalone executables: flags fixed at compile time. */
export function compiledRoles(): Role[] {
  return (Object.keys(PERMISSIONS) as Role[]).filter((r) => !PERMISSIONS[r].resolve);
}

/** The flags a compiled role bakes in: the table's, `${VAR:-default}` → default. */
export function compiledFlags(role: Role): string[] {
  return templatesFor(role).map((t) => t.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, "$1"));
}

/** Where `deno compile` looks for a cached denort zip for `triple`. */
export function denortCache(triple: string, env: (k: string) => string | undefined): string {
  const home = env("HOME") ?? "";
  const dir = env("DENO_DIR") ??
    (Deno.build.os === "darwin"
      ? `${home}/Library/Caches/deno`
      : `${env("XDG_CACHE_HOME") ?? `${home}/.cache`}/deno`);
  return `${dir}/dl/release/v${Deno.version.deno}/denort-${triple}.zip`;
}

/** Targets without a denort: DENORT_BIN only serves the host's own target. */
export function missingDenort(
  targets: readonly string[],
  env: (k: string) => string | undefined,
  fileExists: (p: string) => boolean = exists,
): string[] {
  const denortBin = env("DENORT_BIN");
  return targets.filter((t) => {
    const triple = TARGETS[t]!;
    if (denortBin && triple === Deno.build.target) return false;
    return !fileExists(denortCache(triple, env));
  });
}

async function run(cmd: string, args: string[], env?: Record<string, string>): Promise<void> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    ...(env ? { env, clearEnv: true } : {}),
  }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Builds the bundled form (never compiled: the release compiles per target itself). */
async function buildBundled(): Promise<void> {
  const env = Deno.env.toObject();
  delete env.DENORT_BIN;
  await run(Deno.execPath(), ["run", "-A", `${ROOT}/scripts/build.ts`, "--quiet"], env);
  for (const role of Object.keys(PERMISSIONS) as Role[]) {
    if (!exists(`${ROOT}/dist/lib/${role}.js`)) {
      throw new Error(`release: ${role} was not built (${PERMISSIONS[role].entry} missing?)`);
    }
  }
}

function copy(from: string, to: string, mode: number): void {
  Deno.copyFileSync(from, to);
  Deno.chmodSync(to, mode);
}

/** Writes the feature folder (definition, scripts, payload of container roles) into `dir`. */
export function writeFeatureDir(dir: string): void {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch { /* not there yet */ }
  Deno.mkdirSync(`${dir}/payload/bin`, { recursive: true });
  Deno.mkdirSync(`${dir}/payload/lib`, { recursive: true });
  for (const f of FEATURE_FILES) {
    copy(`${FEATURE_SRC}/${f}`, `${dir}/${f}`, f.endsWith(".sh") ? 0o755 : 0o644);
  }
  copy(`${ROOT}/dist/lib/resolve.js`, `${dir}/payload/lib/resolve.js`, 0o644);
  for (const role of CONTAINER_ROLES) {
    copy(`${ROOT}/dist/lib/${role}.js`, `${dir}/payload/lib/${role}.js`, 0o644);
    // Launchers without the build machine's deno path: in a container the
    // Feature's own Deno (lib/gcp-gate/node_modules/deno/deno) is the one to run.
    Deno.writeTextFileSync(`${dir}/payload/bin/${role}`, launcherScript(role), { mode: 0o755 });
    Deno.chmodSync(`${dir}/payload/bin/${role}`, 0o755);
  }
}

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", Deno.readFileSync(path));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function listFiles(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...listFiles(`${dir}/${e.name}`, rel));
    else if (e.isFile && rel !== "SHA256SUMS") out.push(rel);
  }
  return out.sort();
}

interface ReleaseArgs {
  feature: boolean;
  featureDir: string;
  bundledOnly: boolean;
  targets: string[];
  out: string;
}

function parseArgs(args: readonly string[]): ReleaseArgs {
  const r: ReleaseArgs = {
    feature: false,
    featureDir: `${ROOT}/.devcontainer/gcp-gate-feature`,
    bundledOnly: false,
    targets: Object.keys(TARGETS),
    out: `${ROOT}/dist/release`,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === "--feature") r.feature = true;
    else if (a === "--bundled-only") r.bundledOnly = true;
    else if (a === "--out") r.out = value();
    else if (a === "--feature-dir") r.featureDir = value();
    else if (a === "--target") {
      r.targets = value().split(",").filter((t) => t !== "");
      const bad = r.targets.filter((t) => !(t in TARGETS));
      if (bad.length || r.targets.length === 0) {
        throw new UsageError(
          `unknown target ${bad.join(",") || "(none)"}; known: ${Object.keys(TARGETS).join(", ")}`,
        );
      }
    } else throw new UsageError(`unknown argument ${JSON.stringify(a)}`);
  }
  if (!r.out.startsWith("/")) r.out = `${Deno.cwd()}/${r.out}`;
  if (!r.featureDir.startsWith("/")) r.featureDir = `${Deno.cwd()}/${r.featureDir}`;
  return r;
}

class UsageError extends Error {}

async function release(a: ReleaseArgs): Promise<void> {
  const env = (k: string): string | undefined => Deno.env.get(k);
  if (a.feature) {
    await buildBundled();
    writeFeatureDir(a.featureDir);
    console.error(`release: feature with payload → ${a.featureDir}`);
    return;
  }
  // Check denort first: stop before building anything rather than half a release.
  if (!a.bundledOnly) {
    const missing = missingDenort(a.targets, env);
    if (missing.length) {
      throw new Error(
        `no denort for ${
          missing.join(", ")
        } (deno compile cannot download it here): set DENORT_BIN=/path/to/denort for the host target (${Deno.build.target}) or cache denort-<triple>.zip under ${
          denortCache("<triple>", env).replace(/\/denort-<triple>\.zip$/, "")
        }, or use --target or --bundled-only`,
      );
    }
  }
  await buildBundled();
  try {
    Deno.removeSync(a.out, { recursive: true });
  } catch { /* first release */ }
  Deno.mkdirSync(a.out, { recursive: true });
  const stage = Deno.makeTempDirSync({ prefix: "gcp-gate-release-" });
  try {
    const bundled = `gcp-gate-${VERSION}-bundled.tar.gz`;
    await run("tar", ["-czf", `${a.out}/${bundled}`, "-C", `${ROOT}/dist`, "bin", "lib"]);
    console.error(`release: ${bundled}`);
    writeFeatureDir(`${stage}/feature`);
    const feature = `devcontainer-feature-gcp-gate-${VERSION}.tgz`;
    await run("tar", ["-czf", `${a.out}/${feature}`, "-C", `${stage}/feature`, "."]);
    console.error(`release: ${feature}`);
    const npm = await writeNpmPackage({ root: ROOT, stage: `${stage}/npm`, out: a.out });
    console.error(`release: ${npm}`);
  } finally {
    Deno.removeSync(stage, { recursive: true });
  }
  if (!a.bundledOnly) {
    for (const target of a.targets) {
      Deno.mkdirSync(`${a.out}/${target}`, { recursive: true });
      for (const role of compiledRoles()) {
        const flags = compiledFlags(role);
        await run(Deno.execPath(), [
          "compile",
          "--quiet",
          "--no-prompt",
          "--no-config",
          "--target",
          TARGETS[target]!,
          ...flags,
          "-o",
          `${a.out}/${target}/${role}`,
          `${ROOT}/dist/lib/${role}.js`,
        ]);
        console.error(`release: ${target}/${role} (${flags.join(" ")})`);
      }
    }
  }
  const sums = await Promise.all(
    listFiles(a.out).map(async (f) => `${await sha256(`${a.out}/${f}`)}  ${f}`),
  );
  Deno.writeTextFileSync(`${a.out}/SHA256SUMS`, sums.join("\n") + "\n");
  console.error(`release: ${sums.length} files, SHA256SUMS → ${a.out}`);
}

async function main(): Promise<number> {
  try {
    await release(parseArgs(Deno.args));
    return 0;
  } catch (err) {
    const msg = (err as Error).message;
    console.error(
      `release: ${err instanceof UsageError ? msg : msg.split("\n").slice(0, 3).join(" ")}`,
    );
    return err instanceof UsageError ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await main());
