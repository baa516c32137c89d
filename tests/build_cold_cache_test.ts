// deno-lint-ignore-file no-console -- prints each build's time and why the test did not run
/**
 * `deno task build` on a machine whose Deno cache is empty (a newcomer's
 * first command): five cold builds in a row must all succeed. Before the
 * cache warm-up in scripts/build.ts, about one in three failed with
 * `failed to copy esbuild binary` (parallel bundles racing on $DENO_DIR/dl).
 *
 * Each build runs in a copy of the sources, so the tree other tests use is
 * untouched. A cold cache downloads npm packages (and esbuild) from the npm
 * registry: where it cannot be reached the test is reported as not run.
 */
import assert from "node:assert/strict";
import { PERMISSIONS } from "../scripts/build.ts";
import { baseEnv, ROOT, run, tempDir } from "./_utils.ts";

const SOURCES = ["deno.json", "deno.lock", "gate", "proxy", "wrap", "kube", "shared", "scripts"];
const RUNS = 5;

async function registryReachable(): Promise<string | undefined> {
  const registry = Deno.env.get("NPM_CONFIG_REGISTRY") ?? "https://registry.npmjs.org/";
  try {
    const res = await fetch(new URL("esbuild", registry), {
      method: "HEAD",
      signal: AbortSignal.timeout(5000),
    });
    await res.body?.cancel();
    return res.ok ? undefined : `npm registry answered ${res.status}`;
  } catch (err) {
    return `npm registry unreachable: ${(err as Error).message}`;
  }
}

const unreachable = await registryReachable();
if (unreachable) console.warn(`build cold-cache test not run: ${unreachable}`);

/** Deno's npm client trusts NODE_EXTRA_CA_CERTS (a re-signing egress proxy's CA, for one). */
function tlsTrust(): Record<string, string> {
  const ca = Deno.env.get("NODE_EXTRA_CA_CERTS");
  return ca ? { NODE_EXTRA_CA_CERTS: ca } : {};
}

function copyTree(from: string, to: string): void {
  if (Deno.statSync(from).isFile) {
    Deno.copyFileSync(from, to);
    return;
  }
  Deno.mkdirSync(to);
  for (const e of Deno.readDirSync(from)) copyTree(`${from}/${e.name}`, `${to}/${e.name}`);
}

Deno.test({
  name: `build: ${RUNS} builds in a row with an empty DENO_DIR all succeed${
    unreachable ? ` (not run: ${unreachable})` : ""
  }`,
  ignore: unreachable !== undefined,
  fn: async () => {
    await using work = tempDir("gcp-gate-cold-build-");
    const src = `${work.path}/src`;
    Deno.mkdirSync(src);
    for (const f of SOURCES) copyTree(`${ROOT}/${f}`, `${src}/${f}`);
    for (let i = 1; i <= RUNS; i++) {
      const denoDir = Deno.makeTempDirSync({ dir: work.path, prefix: "deno-dir-" });
      const t0 = performance.now();
      const res = await run(Deno.execPath(), ["run", "-A", "scripts/build.ts", "--quiet"], {
        cwd: src,
        env: { ...baseEnv(work.path), ...tlsTrust(), DENO_DIR: denoDir },
        timeoutMs: 180_000,
      });
      assert.equal(res.code, 0, `cold build ${i}/${RUNS} failed:\n${res.stderr}`);
      console.log(`cold build ${i}/${RUNS}: ${Math.round(performance.now() - t0)} ms`);
      for (const role of Object.keys(PERMISSIONS)) {
        assert.ok(Deno.statSync(`${src}/dist/lib/${role}.js`).size > 0, role);
        assert.ok(Deno.statSync(`${src}/dist/bin/${role}`).isFile, role);
      }
      Deno.removeSync(denoDir, { recursive: true });
      Deno.removeSync(`${src}/dist`, { recursive: true });
    }
  },
});
