/**
 * The npm package of a release: `npm i -g ./gcp-gate-<version>.tgz` on a
 * machine with only Node gives the five roles on PATH.
 *
 * - `bin` = the five launchers, generated from the same permission table as
 *   dist/bin (so every role's flags are unchanged) but WITHOUT the build
 *   machine's deno path: an installed package runs the Deno it depends on.
 * - `dependencies: { deno: "<exact version>" }`: npm installs Deno's binary
 *   package into <pkg>/node_modules/deno (or beside <pkg> when hoisted), where
 *   the launchers look first.
 */
import { launcherScript, PERMISSIONS } from "./build.ts";
import type { Role } from "../shared/config.ts";
import { VERSION } from "../shared/version.ts";

export interface NpmPackageOptions {
  /** The repository root (dist/lib must be built). */
  readonly root: string;
  /** An empty scratch directory for the package tree (created). */
  readonly stage: string;
  /** Where the .tgz goes. */
  readonly out: string;
}

/** package.json of the npm package. */
export function npmManifest(): Record<string, unknown> {
  const roles = Object.keys(PERMISSIONS) as Role[];
  return {
    name: "gcp-gate",
    version: VERSION,
    description:
      "Google Cloud credentials stay on the host: gcp-gate holds ADC and mints short-lived tokens for devcontainers over a Unix socket; gcp-metadata-proxy, with-prod and gcp-kube-token use them in the container.",
    bin: Object.fromEntries(roles.map((r) => [r, `bin/${r}`])),
    files: ["bin/", "lib/", "README.md"],
    // Exact: the permission flags and the bundles are tested with this Deno.
    dependencies: { deno: Deno.version.deno },
    os: ["linux", "darwin"],
  };
}

const README = `# gcp-gate (npm package)

    npm i -g ./gcp-gate-${VERSION}.tgz

Installs \`gcp-gate\`, \`gcp-metadata-proxy\`, \`with-prod\`, \`gcp-kube-token\` and
\`gcp-kube-setup\`, each a POSIX sh launcher that runs its bundled role under Deno ${Deno.version.deno}
(an npm dependency of this package) with its least-privilege permission flags.
Set GCP_GATE_DENO to use another deno. Documentation: the project's README.
`;

/** Writes the package tree into `stage` and packs it into `out`; returns the file name. */
export async function writeNpmPackage(o: NpmPackageOptions): Promise<string> {
  const pkg = `${o.stage}/package`;
  Deno.mkdirSync(`${pkg}/bin`, { recursive: true });
  Deno.mkdirSync(`${pkg}/lib`, { recursive: true });
  Deno.writeTextFileSync(`${pkg}/package.json`, JSON.stringify(npmManifest(), null, 2) + "\n");
  Deno.writeTextFileSync(`${pkg}/README.md`, README);
  Deno.copyFileSync(`${o.root}/dist/lib/resolve.js`, `${pkg}/lib/resolve.js`);
  for (const role of Object.keys(PERMISSIONS) as Role[]) {
    Deno.copyFileSync(`${o.root}/dist/lib/${role}.js`, `${pkg}/lib/${role}.js`);
    Deno.writeTextFileSync(`${pkg}/bin/${role}`, launcherScript(role), { mode: 0o755 });
    Deno.chmodSync(`${pkg}/bin/${role}`, 0o755);
  }
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("npm", {
      args: ["pack", "--silent", "--ignore-scripts", "--pack-destination", o.out],
      cwd: pkg,
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (err) {
    throw new Error(`cannot run npm to pack the npm package: ${(err as Error).message}`);
  }
  if (!out.success) {
    throw new Error(`npm pack failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  const name = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  if (name !== `gcp-gate-${VERSION}.tgz`) throw new Error(`npm pack wrote unexpected ${name}`);
  return name;
}
