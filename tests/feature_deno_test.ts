/**
 * The Feature's install.sh gets Deno in images without Node: the binary
 * package npm would fetch, downloaded with curl or wget from a registry
 * (here a local one on 127.0.0.1), checked against the SHA-512 pinned in the
 * Feature. Every bad state (unsupported architecture, no curl/wget, no
 * network, checksum mismatch, a denoPath that is not there) is one line and
 * exit 1.
 *
 * install.sh runs with PATH limited to a directory of the tools an image
 * would have (no deno, no npm), so the download path is the one taken.
 */
import assert from "node:assert/strict";
import { launcherScript, PERMISSIONS } from "../scripts/build.ts";
import type { Role } from "../shared/config.ts";
import { baseEnv, ROOT, run, type RunResult, tempDir } from "./_utils.ts";

const FEATURE = `${ROOT}/devcontainer/feature`;
const TOOLS = [
  "sh",
  "dirname",
  "grep",
  "uname",
  "sha512sum",
  "mktemp",
  "rm",
  "tr",
  "cut",
  "tar",
  "gzip",
  "head",
  "install",
  "mv",
  "ln",
  "chmod",
  "cat",
];

/** The real package for this machine, cached by .ci/run (npm pack); absent: not run. */
const CACHED_TGZ = Deno.env.get("GCP_GATE_DENO_TGZ") ??
  "/var/cache/gcp-gate-ci/npm/deno-linux-x64-glibc-2.9.6.tgz";
const HAVE_TGZ = Deno.build.arch === "x86_64" && Deno.build.os === "linux" &&
  (() => {
    try {
      return Deno.statSync(CACHED_TGZ).isFile;
    } catch {
      return false;
    }
  })();

function which(name: string): string | undefined {
  for (const dir of ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
    } catch { /* next */ }
  }
  return undefined;
}

/** A bin dir holding `names` (links to the real tools) and `fakes` (scripts). */
function toolDir(dir: string, names: string[], fakes: Record<string, string> = {}): string {
  const bin = `${dir}/tools`;
  Deno.mkdirSync(bin, { recursive: true });
  for (const n of names) {
    const p = which(n);
    if (!p) throw new Error(`${n} missing on this machine`);
    Deno.symlinkSync(p, `${bin}/${n}`);
  }
  for (const [n, body] of Object.entries(fakes)) {
    Deno.writeTextFileSync(`${bin}/${n}`, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  }
  return bin;
}

/** Serves `body` for every tarball request on 127.0.0.1; records the paths asked for. */
function registry(body: () => Uint8Array<ArrayBuffer>): {
  url: string;
  paths: string[];
  [Symbol.asyncDispose](): Promise<void>;
} {
  const paths: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    paths.push(new URL(req.url).pathname);
    return new Response(body());
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    paths,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/**
 * The payload as `deno task release --feature` writes it: dist/lib plus
 * launchers WITHOUT the build machine's deno path, so a launcher that runs
 * proves the Feature's own Deno was found.
 */
function payload(dir: string): string {
  const p = `${dir}/payload`;
  Deno.mkdirSync(`${p}/bin`, { recursive: true });
  Deno.mkdirSync(`${p}/lib`, { recursive: true });
  for (const e of Deno.readDirSync(`${ROOT}/dist/lib`)) {
    Deno.copyFileSync(`${ROOT}/dist/lib/${e.name}`, `${p}/lib/${e.name}`);
  }
  for (const role of Object.keys(PERMISSIONS) as Role[]) {
    Deno.writeTextFileSync(`${p}/bin/${role}`, launcherScript(role), { mode: 0o755 });
  }
  return p;
}

function install(
  root: string,
  path: string,
  options: Record<string, string> = {},
): Promise<RunResult> {
  return run(`${path}/sh`, [`${FEATURE}/install.sh`], {
    env: baseEnv(root, {
      PATH: path,
      TMPDIR: root,
      GCP_GATE_INSTALL_ROOT: `${root}/root`,
      GCP_GATE_PAYLOAD: payload(root),
      ...options,
    }),
    timeoutMs: 120_000,
  });
}

const DENO_LINK = "root/usr/local/lib/gcp-gate/node_modules/deno/deno";

/** The failure is exactly one line (after any progress line) and names `re`. */
function assertOneLineFailure(res: RunResult, re: RegExp): void {
  assert.equal(res.code, 1, res.stderr);
  const lines = res.stderr.trim().split("\n").filter((l) => !/: downloading deno /.test(l));
  assert.equal(lines.length, 1, res.stderr);
  assert.match(lines[0]!, re);
}

function exists(p: string): boolean {
  try {
    Deno.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

for (const fetcher of ["curl", "wget"]) {
  Deno.test({
    name: `feature deno: no deno or npm → the pinned package via ${fetcher}, verified, runs${
      HAVE_TGZ ? "" : ` (not run: no ${CACHED_TGZ}; .ci/run caches it)`
    }`,
    ignore: !HAVE_TGZ || !which(fetcher),
    fn: async () => {
      await using dir = tempDir();
      const tgz = Deno.readFileSync(CACHED_TGZ);
      await using reg = registry(() => tgz);
      const res = await install(dir.path, toolDir(dir.path, [...TOOLS, fetcher]), {
        NPMREGISTRY: `${reg.url}/`,
      });
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stderr, new RegExp(`downloading deno 2\\.9\\.6 .*\\(${fetcher}\\)`));
      assert.match(res.stderr, /sha512 verified/);
      assert.deepEqual(reg.paths, ["/@deno/linux-x64-glibc/-/linux-x64-glibc-2.9.6.tgz"]);
      const deno = `${dir.path}/${DENO_LINK}`;
      assert.equal((Deno.statSync(deno).mode ?? 0) & 0o777, 0o755);
      const v = await run(deno, ["--version"], { env: baseEnv(dir.path) });
      assert.match(v.stdout, /^deno 2\.9\.6 /);
      // The installed launcher runs with that deno: none on PATH, no builder's path baked in.
      const launcher = `${dir.path}/root/usr/local/bin/gcp-kube-token`;
      assert.ok(!Deno.readTextFileSync(launcher).includes(Deno.execPath()));
      const lv = await run(launcher, ["--version"], {
        env: baseEnv(dir.path, { PATH: toolDir(`${dir.path}/launch`, ["sh", "readlink"]) }),
      });
      assert.equal(lv.code, 0, lv.stderr);
      assert.match(lv.stdout, /^gcp-kube-token \d+\.\d+\.\d+ /);
    },
  });
}

const NODE = which("node");
const NPM = which("npm");

Deno.test({
  name: `feature deno: with npm in the image, deno@2.9.6 goes into gcp-gate's own lib dir${
    NODE && NPM ? "" : " (not run: node/npm missing)"
  }`,
  ignore: !NODE || !NPM,
  fn: async () => {
    await using dir = tempDir();
    const tools = toolDir(dir.path, [...TOOLS, "node", "npm"]);
    const cache = (await run(NPM!, ["config", "get", "cache"], {
      env: { PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "/" },
    })).stdout.trim();
    const res = await install(dir.path, tools, {
      // npm's cache on this machine (deno@2.9.6 is usually in it): no registry round trip.
      npm_config_cache: cache,
      npm_config_prefer_offline: "true",
      ...(Deno.env.get("NODE_EXTRA_CA_CERTS")
        ? { NODE_EXTRA_CA_CERTS: Deno.env.get("NODE_EXTRA_CA_CERTS")! }
        : {}),
    });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /installing deno 2\.9\.6 with npm/);
    assert.doesNotMatch(res.stderr, /downloading deno/);
    const deno = `${dir.path}/${DENO_LINK}`;
    const v = await run(deno, ["--version"], { env: baseEnv(dir.path) });
    assert.match(v.stdout, /^deno 2\.9\.6 /);
    // Nothing outside gcp-gate's lib dir: no global prefix, no bin link.
    assert.equal(exists(`${dir.path}/root/usr/local/bin/deno`), false);
    const lv = await run(`${dir.path}/root/usr/local/bin/gcp-metadata-proxy`, ["--version"], {
      env: baseEnv(dir.path, { PATH: toolDir(`${dir.path}/launch`, ["sh", "readlink"]) }),
    });
    assert.equal(lv.code, 0, lv.stderr);
  },
});

Deno.test("feature deno: a download that does not match the pinned SHA-512 is refused", async () => {
  await using dir = tempDir();
  await using reg = registry(() => new TextEncoder().encode("not deno"));
  const res = await install(dir.path, toolDir(dir.path, [...TOOLS, "curl"]), {
    NPMREGISTRY: reg.url,
  });
  assertOneLineFailure(res, /checksum mismatch for http:\/\/127\.0\.0\.1:\d+\/@deno\/.*refusing/);
  assert.equal(exists(`${dir.path}/${DENO_LINK}`), false);
  assert.equal(exists(`${dir.path}/root/usr/local/bin/gcp-metadata-proxy`), false);
});

Deno.test("feature deno: no network gives one line naming npmRegistry and denoPath", async () => {
  await using dir = tempDir();
  // A port that was just free: nothing listens there.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  for (const fetcher of ["curl", "wget"]) {
    if (!which(fetcher)) continue;
    const tools = `${dir.path}/${fetcher}`;
    const res = await install(tools, toolDir(tools, [...TOOLS, fetcher]), {
      NPMREGISTRY: `http://127.0.0.1:${port}`,
    });
    assertOneLineFailure(res, /cannot download Deno from .*no network\?.*npmRegistry.*denoPath/);
  }
});

Deno.test("feature deno: neither npm nor curl nor wget gives one line", async () => {
  await using dir = tempDir();
  const res = await install(dir.path, toolDir(dir.path, TOOLS));
  assertOneLineFailure(res, /neither npm nor curl nor wget.*denoPath/);
});

Deno.test("feature deno: an unsupported architecture gives one line", async () => {
  await using dir = tempDir();
  const uname = 'case "$1" in -m) echo s390x ;; *) echo Linux ;; esac';
  const tools = toolDir(dir.path, [...TOOLS.filter((t) => t !== "uname"), "curl"], { uname });
  const res = await install(dir.path, tools);
  assertOneLineFailure(res, /unsupported architecture 's390x'.*denoPath/);
});

Deno.test("feature deno: denoPath names the deno to use; a missing one is refused", async () => {
  await using dir = tempDir();
  const tools = toolDir(dir.path, TOOLS);
  const bad = await install(dir.path, tools, { DENOPATH: "/nonexistent/deno" });
  assertOneLineFailure(bad, /option denoPath '\/nonexistent\/deno' is not an executable/);
  const ok = await install(dir.path, tools, { DENOPATH: Deno.execPath() });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(Deno.readLinkSync(`${dir.path}/${DENO_LINK}`), Deno.execPath());
  const badRegistry = await install(dir.path, tools, { NPMREGISTRY: "ftp://x" });
  assertOneLineFailure(badRegistry, /option npmRegistry must be an http\(s\) URL/);
});
