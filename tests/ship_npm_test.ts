/**
 * The npm package from `deno task release`: `npm i -g ./gcp-gate-<v>.tgz`
 * into a fresh prefix on a PATH with only Node (no deno) puts the five
 * launchers on PATH; each runs `--version` with the package's own Deno, and
 * a token goes from the fake Google through the INSTALLED gate and proxy.
 *
 * Installing the package fetches its `deno` dependency (npm's cache first,
 * else the npm registry): without node/npm the test is reported as not run.
 */
import assert from "node:assert/strict";
import { PERMISSIONS } from "../scripts/build.ts";
import { VERSION } from "../shared/version.ts";
import { startFakeGoogle } from "./fakes/google.ts";
import {
  assertNoSecrets,
  baseEnv,
  BIN,
  DEV_SA,
  hasCommand,
  ROOT,
  run,
  start,
  tempDir,
} from "./_utils.ts";

const HAVE_NPM = hasCommand("npm") && hasCommand("node");
const ROLES = Object.keys(PERMISSIONS);

/** npm's cache on this machine, so repeated runs install offline. */
async function npmCache(): Promise<string | undefined> {
  if (!HAVE_NPM) return undefined;
  const r = await run("npm", ["config", "get", "cache"], {
    command: "npm",
    env: { PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "/" },
  });
  return r.code === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
}

/** A PATH directory with Node, npm and the shell tools the launchers use; no deno. */
function nodeOnlyPath(dir: string): string {
  const bin = `${dir}/node-only`;
  Deno.mkdirSync(bin);
  for (const name of ["node", "npm", "sh", "readlink"]) {
    const real = (Deno.env.get("PATH") ?? "").split(":").map((d) => `${d}/${name}`)
      .find((p) => hasCommand(p));
    if (!real) throw new Error(`${name} not on PATH`);
    Deno.symlinkSync(real, `${bin}/${name}`);
  }
  return bin;
}

/** The launcher's lines that decide what runs, minus the line that finds Deno. */
function permissionLines(launcher: string): string[] {
  return launcher.split("\n").filter((l) => !/\bfor deno in\b/.test(l));
}

Deno.test({
  name: `npm package: npm i -g of the release tarball gives five working roles${
    HAVE_NPM ? "" : " (not run: node/npm missing)"
  }`,
  ignore: !HAVE_NPM,
  fn: async () => {
    await using dir = tempDir();
    const d = dir.path;
    const out = `${d}/out`;
    const rel = await run(
      Deno.execPath(),
      ["run", "-A", `${ROOT}/scripts/release.ts`, "--bundled-only", "--out", out],
      { env: baseEnv(d), timeoutMs: 120_000 },
    );
    assert.equal(rel.code, 0, rel.stderr);
    const tgz = `${out}/gcp-gate-${VERSION}.tgz`;
    assert.match(
      Deno.readTextFileSync(`${out}/SHA256SUMS`),
      new RegExp(`  gcp-gate-${VERSION}\\.tgz$`, "m"),
    );

    // Unpacked: the manifest and the launchers, flag for flag the table's.
    Deno.mkdirSync(`${d}/unpacked`);
    const x = await run("tar", ["-xzf", tgz, "-C", `${d}/unpacked`], { command: "tar" });
    assert.equal(x.code, 0, x.stderr);
    const pkg = `${d}/unpacked/package`;
    const manifest = JSON.parse(Deno.readTextFileSync(`${pkg}/package.json`));
    assert.equal(manifest.name, "gcp-gate");
    assert.equal(manifest.version, VERSION);
    assert.deepEqual(manifest.bin, Object.fromEntries(ROLES.map((r) => [r, `bin/${r}`])));
    assert.deepEqual(manifest.dependencies, { deno: Deno.version.deno });
    for (const role of ROLES) {
      const shipped = Deno.readTextFileSync(`${pkg}/bin/${role}`);
      // Never the build machine's deno: the package runs its own.
      assert.ok(!shipped.includes(Deno.execPath()), `${role} bakes ${Deno.execPath()}`);
      assert.deepEqual(
        permissionLines(shipped),
        permissionLines(Deno.readTextFileSync(`${BIN}/${role}`)),
        role,
      );
    }

    // npm i -g into a fresh prefix, with only Node on PATH.
    const tools = nodeOnlyPath(d);
    const prefix = `${d}/prefix`;
    const cache = await npmCache();
    const env = baseEnv(d, {
      PATH: `${prefix}/bin:${tools}`,
      ...(cache ? { npm_config_cache: cache } : {}),
      ...(Deno.env.get("NODE_EXTRA_CA_CERTS")
        ? { NODE_EXTRA_CA_CERTS: Deno.env.get("NODE_EXTRA_CA_CERTS")! }
        : {}),
    });
    const inst = await run(
      `${tools}/npm`,
      ["i", "-g", "--prefix", prefix, "--prefer-offline", "--no-audit", "--no-fund", tgz],
      { env, timeoutMs: 300_000 },
    );
    assert.equal(inst.code, 0, inst.stdout + inst.stderr);
    for (const role of ROLES) {
      const v = await run(`${prefix}/bin/${role}`, ["--version"], { env });
      assert.equal(v.code, 0, `${role}: ${v.stderr}`);
      assert.match(v.stdout, new RegExp(`^${role} ${VERSION.replaceAll(".", "\\.")} `), role);
    }

    // A token through the installed gate and the installed proxy.
    await using fake = await startFakeGoogle();
    Deno.mkdirSync(`${d}/run`, { mode: 0o700 });
    Deno.writeTextFileSync(`${d}/adc.json`, fake.adcJson(), { mode: 0o600 });
    const config = `${d}/gate.toml`;
    Deno.writeTextFileSync(
      config,
      [
        `project_id = "demo-project"`,
        `service_account = "${DEV_SA}"`,
        `socket_path = "${d}/run/gcp-gate/gate.sock"`,
        `credentials_file = "${d}/adc.json"`,
        fake.endpointsToml(),
      ].join("\n"),
    );
    await using gate = await start(`${prefix}/bin/gcp-gate`, ["--config", config], {
      env,
      ready: /ready: listening on/,
    });
    await using proxy = await start(
      `${prefix}/bin/gcp-metadata-proxy`,
      ["--config", config, "--port", "0"],
      { env, ready: /listening on http:\/\/(127\.0\.0\.1:\d+)/ },
    );
    const addr = (await proxy.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/))[1];
    const res = await fetch(`${addr}/computeMetadata/v1/instance/service-accounts/default/token`, {
      headers: { "Metadata-Flavor": "Google" },
      signal: AbortSignal.timeout(10_000),
    });
    const body = await res.text();
    assert.equal(res.status, 200, `${body}\n${gate.output()}\n${proxy.output()}`);
    const token = JSON.parse(body).access_token;
    assert.ok(fake.issued().some((i) => i.token === token && i.email === DEV_SA));
    assertNoSecrets(gate.output() + proxy.output(), fake, "installed gate/proxy output");
  },
});
