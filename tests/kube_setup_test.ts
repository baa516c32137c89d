/**
 * gcp-kube-setup, the built launcher, on a kubeconfig in gcloud's format
 * (tests/fixtures/kubeconfig_gcloud.yaml): patch, dry run, idempotence, exact
 * revert, symlinks, and bad input that must leave the file byte-identical.
 */
import assert from "node:assert/strict";
import { baseEnv, BIN, ROOT, run, tempDir } from "./_utils.ts";

const FIXTURES = `${ROOT}/tests/fixtures`;
const GCLOUD = Deno.readFileSync(`${FIXTURES}/kubeconfig_gcloud.yaml`);
const TOKEN = `${BIN}/gcp-kube-token`;
const EXPECTED = Deno.readTextFileSync(`${FIXTURES}/kubeconfig_gcloud.patched.yaml`)
  .replaceAll("@GCP_KUBE_TOKEN@", TOKEN);

function setup(home: string, args: string[], extraEnv: Record<string, string> = {}) {
  return run("gcp-kube-setup", args, { env: baseEnv(home, extraEnv) });
}

/** A home with ~/.kube/config = the gcloud fixture (mode 0600). */
function kubeHome(home: string, content: Uint8Array = GCLOUD): string {
  Deno.mkdirSync(`${home}/.kube`, { recursive: true });
  const f = `${home}/.kube/config`;
  Deno.writeFileSync(f, content, { mode: 0o600 });
  Deno.chmodSync(f, 0o600);
  return f;
}

Deno.test("gcp-kube-setup patches ~/.kube/config exactly, then says there is nothing to do", async () => {
  await using home = tempDir();
  const f = kubeHome(home.path);
  const first = await setup(home.path, []);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(Deno.readTextFileSync(f), EXPECTED);
  assert.deepEqual(Deno.readFileSync(`${f}.bak`), GCLOUD);
  assert.equal(Deno.statSync(f).mode! & 0o777, 0o600);
  assert.match(first.stderr, /pointed 2 user\(s\) at .*gcp-kube-token/);
  const second = await setup(home.path, []);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /nothing to change/);
  assert.equal(Deno.readTextFileSync(f), EXPECTED);
});

Deno.test("gcp-kube-setup --dry-run prints a unified diff and changes nothing", async () => {
  await using home = tempDir();
  const f = kubeHome(home.path);
  const res = await setup(home.path, ["--dry-run"]);
  assert.equal(res.code, 0, res.stderr);
  assert.deepEqual(Deno.readFileSync(f), GCLOUD);
  assert.throws(() => Deno.statSync(`${f}.bak`), Deno.errors.NotFound);
  assert.match(res.stdout, /^--- .*config\n\+\+\+ .*\n@@ -\d+,\d+ \+\d+,\d+ @@\n/);
  assert.match(res.stdout, /^- {6}command: gke-gcloud-auth-plugin$/m);
  assert.match(res.stdout, new RegExp(`^\\+      command: ${TOKEN}$`, "m"));
  assert.match(res.stderr, /dry run/);
});

Deno.test("gcp-kube-setup --revert restores the gcloud kubeconfig byte for byte", async () => {
  await using home = tempDir();
  const f = kubeHome(home.path);
  assert.equal((await setup(home.path, [])).code, 0);
  const res = await setup(home.path, ["--revert"]);
  assert.equal(res.code, 0, res.stderr);
  assert.deepEqual(Deno.readFileSync(f), GCLOUD);
  // Without any backup the plugin entries are rewritten to gcloud's defaults.
  Deno.writeTextFileSync(f, EXPECTED);
  Deno.removeSync(`${f}.bak`);
  const bare = await setup(home.path, ["--revert"]);
  assert.equal(bare.code, 0, bare.stderr);
  const after = Deno.readTextFileSync(f);
  assert.ok(!after.includes("gcp-kube-token"), after);
  assert.equal(after.match(/command: gke-gcloud-auth-plugin$/gm)?.length, 2);
});

Deno.test("gcp-kube-setup uses the first KUBECONFIG path and --kubeconfig over it", async () => {
  await using home = tempDir();
  const a = `${home.path}/a.yaml`;
  const b = `${home.path}/b.yaml`;
  Deno.writeFileSync(a, GCLOUD, { mode: 0o600 });
  Deno.writeFileSync(b, GCLOUD, { mode: 0o600 });
  const viaEnv = await setup(home.path, [], { KUBECONFIG: `${a}:${b}` });
  assert.equal(viaEnv.code, 0, viaEnv.stderr);
  assert.equal(Deno.readTextFileSync(a), EXPECTED);
  assert.deepEqual(Deno.readFileSync(b), GCLOUD);
  const viaFlag = await setup(home.path, ["--kubeconfig", b], { KUBECONFIG: a });
  assert.equal(viaFlag.code, 0, viaFlag.stderr);
  assert.equal(Deno.readTextFileSync(b), EXPECTED);
});

Deno.test("gcp-kube-setup updates a symlinked kubeconfig's target and keeps the link", async () => {
  await using home = tempDir();
  Deno.mkdirSync(`${home.path}/dotfiles`);
  Deno.mkdirSync(`${home.path}/.kube`);
  const target = `${home.path}/dotfiles/kubeconfig`;
  Deno.writeFileSync(target, GCLOUD, { mode: 0o600 });
  Deno.symlinkSync(target, `${home.path}/.kube/config`);
  const res = await setup(home.path, []);
  assert.equal(res.code, 0, res.stderr);
  assert.ok(Deno.lstatSync(`${home.path}/.kube/config`).isSymlink);
  assert.equal(Deno.readTextFileSync(target), EXPECTED);
});

Deno.test("gcp-kube-setup refuses bad input with one line, exit 1, file untouched", async () => {
  await using home = tempDir();
  const cases: { name: string; file: string; content?: Uint8Array; mode?: number; re: RegExp }[] = [
    { name: "missing", file: `${home.path}/none.yaml`, re: /does not exist/ },
    {
      name: "invalid YAML",
      file: `${home.path}/invalid.yaml`,
      content: Deno.readFileSync(`${FIXTURES}/kubeconfig_invalid.yaml`),
      re: /is not valid YAML \(line \d+, column \d+\)/,
    },
    {
      name: "not a kubeconfig",
      file: `${home.path}/compose.yaml`,
      content: Deno.readFileSync(`${FIXTURES}/kubeconfig_not_kube.yaml`),
      re: /is not a kubeconfig/,
    },
    {
      name: "read-only",
      file: `${home.path}/ro.yaml`,
      content: GCLOUD,
      mode: 0o444,
      re: /is read-only \(mode 0444\); make it writable/,
    },
  ];
  for (const c of cases) {
    if (c.content) {
      Deno.writeFileSync(c.file, c.content);
      Deno.chmodSync(c.file, c.mode ?? 0o600);
    }
    const res = await setup(home.path, ["--kubeconfig", c.file]);
    assert.equal(res.code, 1, `${c.name}: ${res.stderr}`);
    assert.equal(res.stdout, "", c.name);
    assert.equal(res.stderr.trimEnd().split("\n").length, 1, `${c.name}: ${res.stderr}`);
    assert.match(res.stderr, c.re, c.name);
    assert.doesNotMatch(res.stderr, /\bat .*\.(js|ts):\d+/, `${c.name}: stack trace`);
    if (c.content) assert.deepEqual(Deno.readFileSync(c.file), c.content, c.name);
    assert.throws(() => Deno.statSync(`${c.file}.bak`), Deno.errors.NotFound, c.name);
  }
  const usage = await setup(home.path, ["--bogus"]);
  assert.equal(usage.code, 2);
  assert.doesNotMatch(usage.stderr, /\bat .*\.(js|ts):\d+/);
});
