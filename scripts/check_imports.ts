// deno-lint-ignore-file no-console -- a check script reports on stdout/stderr
/**
 * Import rules, checked on the real module graph (`deno info --json`):
 * - a role (gate/, proxy/, wrap/, kube/) imports only shared/ and itself;
 * - shared/ imports no role;
 * - only gate/ reaches google-auth-library.
 */
const ROLES = ["gate", "proxy", "wrap", "kube"];
const root = new URL("..", import.meta.url).pathname;

interface Module {
  specifier: string;
  dependencies?: { specifier: string; code?: { specifier?: string } }[];
  npmPackage?: string;
}

function folderOf(specifier: string): string | undefined {
  if (!specifier.startsWith(`file://${root}`)) return undefined;
  return specifier.slice(`file://${root}`.length).split("/")[0];
}

const entries: string[] = [];
for (const dir of [...ROLES, "shared"]) {
  for (const e of Deno.readDirSync(`${root}${dir}`)) {
    if (e.isFile && e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) {
      entries.push(`${root}${dir}/${e.name}`);
    }
    if (e.isDirectory) {
      for (const f of Deno.readDirSync(`${root}${dir}/${e.name}`)) {
        if (f.isFile && f.name.endsWith(".ts") && !f.name.endsWith("_test.ts")) {
          entries.push(`${root}${dir}/${e.name}/${f.name}`);
        }
      }
    }
  }
}

const problems: string[] = [];
for (const entry of entries) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    stdout: "piped",
    stderr: "piped",
    cwd: root,
  }).output();
  if (!out.success) {
    problems.push(
      `${entry}: deno info failed: ${new TextDecoder().decode(out.stderr).split("\n")[0]}`,
    );
    continue;
  }
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: Module[] };
  const from = folderOf(`file://${entry}`)!;
  for (const m of info.modules) {
    const folder = folderOf(m.specifier);
    if (folder && folder !== from && folder !== "shared") {
      problems.push(
        `${entry.slice(root.length)} reaches ${
          m.specifier.slice(`file://${root}`.length)
        } (${from}/ may import only shared/ and ${from}/)`,
      );
    }
  }
  // Only the graph's own npm modules count (npmPackages lists the whole lockfile).
  const npm = info.modules.map((m) => m.npmPackage ?? "").filter((p) => p !== "");
  if (from !== "gate" && npm.some((p) => p.startsWith("google-auth-library@"))) {
    problems.push(`${entry.slice(root.length)} reaches google-auth-library (only gate/ may)`);
  }
}
if (problems.length) {
  console.error([...new Set(problems)].join("\n"));
  console.error(`imports: ${problems.length} violation(s)`);
  Deno.exit(1);
}
console.log(`imports: ${entries.length} modules checked, rules hold`);
