/**
 * `deno task release`: without denort it stops with one line naming
 * DENORT_BIN; the bundled form (what ships where denort is missing) is built,
 * checksummed and complete, and the Feature archive never contains the gate.
 */
import assert from "node:assert/strict";
import { PERMISSIONS } from "../scripts/build.ts";
import { compiledFlags, compiledRoles, missingDenort, TARGETS } from "../scripts/release.ts";
import type { Role } from "../shared/config.ts";
import { VERSION } from "../shared/version.ts";
import { baseEnv, hasCommand, ROOT, run, tempDir } from "./_utils.ts";

function releaseEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  // DENO_DIR (npm cache) passes through baseEnv; DENORT_BIN does not.
  return baseEnv(home, extra);
}

Deno.test("release: without denort it stops before building, naming DENORT_BIN", async () => {
  await using home = tempDir();
  const env = releaseEnv(home.path);
  const targets = Object.keys(TARGETS);
  // Only meaningful where no denort is cached (as on our machines).
  if (missingDenort(targets, (k) => env[k]).length === 0) return;
  const out = `${home.path}/out`;
  const res = await run(
    Deno.execPath(),
    ["run", "-A", `${ROOT}/scripts/release.ts`, "--out", out],
    {
      env,
      timeoutMs: 60_000,
    },
  );
  assert.equal(res.code, 1);
  assert.match(res.stderr, /DENORT_BIN/);
  assert.equal(res.stderr.trim().split("\n").length, 1, res.stderr);
  assert.throws(() => Deno.statSync(out), Deno.errors.NotFound);
});

Deno.test("release: DENORT_BIN serves only the host target", () => {
  const env = (k: string): string | undefined =>
    ({ DENORT_BIN: "/opt/denort", HOME: "/nonexistent" } as Record<string, string>)[k];
  const missing = missingDenort(Object.keys(TARGETS), env, () => false);
  const host = Object.entries(TARGETS).find(([, t]) => t === Deno.build.target)?.[0];
  assert.deepEqual(missing, Object.keys(TARGETS).filter((t) => t !== host));
  assert.deepEqual(missingDenort(Object.keys(TARGETS), env, () => true), []);
});

Deno.test("release: only config-independent roles are compiled, with the table's flags", () => {
  const compiled = compiledRoles();
  for (const role of Object.keys(PERMISSIONS) as Role[]) {
    assert.equal(compiled.includes(role), !PERMISSIONS[role].resolve, role);
  }
  for (const role of compiled) {
    for (const f of compiledFlags(role)) assert.doesNotMatch(f, /[{}$]/, `${role}: ${f}`);
  }
  if (compiled.includes("gcp-kube-token")) {
    assert.ok(compiledFlags("gcp-kube-token").includes("--allow-net=127.0.0.1:8173"));
  }
});

Deno.test({
  name: "release --bundled-only: archives + SHA256SUMS, feature without the gate",
  ignore: !hasCommand("tar") || !hasCommand("sha256sum"),
  fn: async () => {
    await using home = tempDir();
    const out = `${home.path}/out`;
    const res = await run(
      Deno.execPath(),
      ["run", "-A", `${ROOT}/scripts/release.ts`, "--bundled-only", "--out", out],
      { env: releaseEnv(home.path), timeoutMs: 120_000 },
    );
    assert.equal(res.code, 0, res.stderr);
    const bundled = `gcp-gate-${VERSION}-bundled.tar.gz`;
    const feature = `devcontainer-feature-gcp-gate-${VERSION}.tgz`;
    const npm = `gcp-gate-${VERSION}.tgz`;
    const names = [...Deno.readDirSync(out)].map((e) => e.name).sort();
    assert.deepEqual(names, ["SHA256SUMS", feature, bundled, npm].sort());
    const sums = await run("sha256sum", ["-c", "SHA256SUMS"], { cwd: out, command: "sha256sum" });
    assert.equal(sums.code, 0, sums.stdout + sums.stderr);
    assert.equal(sums.stdout.trim().split("\n").length, 3);

    const list = async (archive: string): Promise<string[]> => {
      const r = await run("tar", ["-tzf", `${out}/${archive}`], { command: "tar" });
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.split("\n").filter((l) => l).map((l) => l.replace(/^\.\//, ""));
    };
    const b = await list(bundled);
    for (const role of Object.keys(PERMISSIONS)) {
      assert.ok(b.includes(`bin/${role}`) && b.includes(`lib/${role}.js`), `${role} in ${bundled}`);
    }
    assert.ok(b.includes("lib/resolve.js"));
    const f = await list(feature);
    for (const file of ["devcontainer-feature.json", "install.sh", "gcp-gate-start.sh"]) {
      assert.ok(f.includes(file), `${file} in ${feature}`);
    }
    assert.ok(f.includes("payload/bin/gcp-metadata-proxy"));
    assert.deepEqual(f.filter((p) => /(^|\/)gcp-gate(\.js)?$/.test(p)), [], "gate in the feature");

    // The feature archive installs: unpack it and run its install.sh into a root.
    const unpacked = `${home.path}/feature`;
    Deno.mkdirSync(unpacked);
    assert.equal(
      (await run("tar", ["-xzf", `${out}/${feature}`, "-C", unpacked], { command: "tar" })).code,
      0,
    );
    const root = `${home.path}/root`;
    const inst = await run("/bin/sh", [`${unpacked}/install.sh`], {
      env: baseEnv(home.path, { GCP_GATE_INSTALL_ROOT: root }),
    });
    assert.equal(inst.code, 0, inst.stderr);
    assert.ok(Deno.statSync(`${root}/usr/local/lib/gcp-gate/lib/gcp-metadata-proxy.js`).isFile);
  },
});
