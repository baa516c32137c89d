/**
 * The Dev Container Feature: install.sh into a temporary root (files, modes,
 * links, config, never the gate), and the gcp-gate-start helper against a
 * real gate: it waits for the socket, starts the proxy in the background and
 * a token comes through it.
 */
import assert from "node:assert/strict";
import { VERSION } from "../shared/version.ts";
import { startFakeGoogle } from "./fakes/google.ts";
import {
  assertNoSecrets,
  baseEnv,
  DEV_SA,
  ROOT,
  run,
  type RunResult,
  start,
  startStack,
  tempDir,
} from "./_utils.ts";

const FEATURE = `${ROOT}/devcontainer/feature`;
const CONTAINER_ROLES = ["gcp-metadata-proxy", "with-prod", "gcp-kube-token", "gcp-kube-setup"];

function mode(path: string): number {
  return (Deno.statSync(path).mode ?? 0) & 0o777;
}

/** Runs install.sh into `root` with the built dist/ as its payload. */
function install(root: string, options: Record<string, string> = {}): Promise<RunResult> {
  return run("/bin/sh", [`${FEATURE}/install.sh`], {
    env: baseEnv(root, {
      GCP_GATE_INSTALL_ROOT: root,
      GCP_GATE_PAYLOAD: `${ROOT}/dist`,
      ...options,
    }),
  });
}

function builtContainerRoles(): string[] {
  return CONTAINER_ROLES.filter((r) => {
    try {
      return Deno.statSync(`${ROOT}/dist/bin/${r}`).isFile;
    } catch {
      return false;
    }
  });
}

Deno.test("feature: devcontainer-feature.json declares options, env and the start helper", () => {
  const f = JSON.parse(Deno.readTextFileSync(`${FEATURE}/devcontainer-feature.json`));
  assert.equal(f.id, "gcp-gate");
  assert.equal(f.version, VERSION);
  assert.deepEqual(Object.keys(f.options).sort(), [
    "denoPath",
    "npmRegistry",
    "port",
    "projectId",
    "socketPath",
  ]);
  // `installsAfter` naming a registry Feature makes `devcontainer up` fetch its
  // metadata even when that Feature is unused: offline/proxied builds fail.
  assert.equal(f.installsAfter, undefined);
  assert.equal(f.dependsOn, undefined);
  for (const k of ["GCE_METADATA_HOST", "GCE_METADATA_IP", "GCE_METADATA_ROOT"]) {
    // No scheme: Go's compute/metadata breaks on one.
    assert.equal(f.containerEnv[k], `127.0.0.1:${f.options.port.default}`);
  }
  assert.match(f.containerEnv.NO_PROXY, /^127\.0\.0\.1,localhost/);
  assert.equal(f.postStartCommand, "/usr/local/bin/gcp-gate-start");
});

Deno.test("feature: install.sh installs the container roles with their modes, never the gate", async () => {
  await using root = tempDir();
  const r = root.path;
  const res = await install(r, { PROJECTID: "demo-project", PORT: "8174" });
  assert.equal(res.code, 0, res.stderr);
  const lib = `${r}/usr/local/lib/gcp-gate`;
  const roles = builtContainerRoles();
  assert.ok(roles.includes("gcp-metadata-proxy"));
  for (const role of roles) {
    assert.equal(mode(`${lib}/bin/${role}`), 0o755, `${role} launcher mode`);
    assert.equal(mode(`${lib}/lib/${role}.js`), 0o644, `${role} bundle mode`);
    assert.equal(Deno.readLinkSync(`${r}/usr/local/bin/${role}`), `../lib/gcp-gate/bin/${role}`);
  }
  assert.equal(mode(`${lib}/lib/resolve.js`), 0o644);
  assert.equal(mode(`${r}/usr/local/bin/gcp-gate-start`), 0o755);
  assert.equal(mode(`${r}/etc/gcp-gate/config.toml`), 0o644);
  const config = Deno.readTextFileSync(`${r}/etc/gcp-gate/config.toml`);
  assert.match(config, /^socket_path = "\/run\/gcp-gate\/gate\.sock"$/m);
  assert.match(config, /^port = 8174$/m);
  assert.match(config, /^project_id = "demo-project"$/m);
  // The gate holds the engineer's credentials: it must never land in a container.
  const all: string[] = [];
  const walk = (d: string): void => {
    for (const e of Deno.readDirSync(d)) {
      if (e.isDirectory) walk(`${d}/${e.name}`);
      else all.push(`${d}/${e.name}`);
    }
  };
  walk(r);
  assert.deepEqual(all.filter((p) => /\/gcp-gate(\.js)?$/.test(p)), []);
  assert.ok(all.length >= 3 * roles.length, "nothing installed");
  // The installed launcher really runs from its new place.
  const v = await run(`${r}/usr/local/bin/gcp-metadata-proxy`, ["--version"], { env: baseEnv(r) });
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /^gcp-metadata-proxy \d+\.\d+\.\d+ /);
});

Deno.test("feature: install.sh rejects bad options before installing anything", async () => {
  await using root = tempDir();
  for (
    const [opts, re] of [
      [{ PORT: "80a" }, /option port/],
      [{ PORT: "70000" }, /option port/],
      [{ SOCKETPATH: "relative/gate.sock" }, /socketPath must be an absolute path/],
      [{ SOCKETPATH: '/run/x"y' }, /must not contain quotes/],
      [{ PROJECTID: "Bad_Project" }, /projectId/],
    ] as const
  ) {
    const res = await install(root.path, opts);
    assert.equal(res.code, 1, JSON.stringify(opts));
    assert.match(res.stderr, re);
    assert.equal(res.stderr.trim().split("\n").length, 1, "one line");
  }
  assert.deepEqual([...Deno.readDirSync(root.path)].map((e) => e.name), []);
  const res = await install(root.path, { GCP_GATE_PAYLOAD: `${root.path}/nothing` });
  assert.equal(res.code, 1);
  assert.match(res.stderr, /deno task release --feature/);
});

/** Installs into a temp root pointing at `socket`, port 0; returns the env for the helper. */
async function installFor(root: string, socket: string): Promise<Record<string, string>> {
  const res = await install(root, { SOCKETPATH: socket, PORT: "0" });
  assert.equal(res.code, 0, res.stderr);
  return baseEnv(root, {
    GCP_GATE_CONFIG: `${root}/etc/gcp-gate/config.toml`,
    GCP_GATE_STATE_DIR: `${root}/state`,
    GCP_GATE_START_TIMEOUT: "20",
  });
}

/** Stops the proxy the helper left running in the background. */
function stopProxy(root: string): void {
  try {
    const pid = Number(Deno.readTextFileSync(`${root}/state/proxy.pid`).trim());
    if (pid > 1) Deno.kill(pid, "SIGTERM");
  } catch { /* not started */ }
}

async function tokenVia(addr: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${addr}/computeMetadata/v1/instance/service-accounts/default/token`, {
    headers: { "Metadata-Flavor": "Google" },
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: await res.text() };
}

Deno.test("feature: gcp-gate-start starts the proxy against a real gate and returns", async () => {
  await using stack = await startStack({ proxy: false });
  await using root = tempDir();
  const r = root.path;
  const env = await installFor(r, stack.socketPath);
  try {
    const res = await run(`${r}/usr/local/bin/gcp-gate-start`, [], { env });
    const log = (): string => {
      try {
        return Deno.readTextFileSync(`${r}/state/proxy.log`);
      } catch {
        return "";
      }
    };
    assert.equal(res.code, 0, `${res.stderr}\n${log()}\n${stack.logs()}`);
    const addr = /serving (http:\/\/127\.0\.0\.1:\d+)/.exec(res.stdout)?.[1];
    assert.ok(addr, res.stdout);
    const t = await tokenVia(addr);
    assert.equal(t.status, 200, `${t.body}\n${log()}`);
    assert.ok(stack.fake.issued().some((i) => t.body.includes(i.token) && i.email === DEV_SA));
    // A second start (postStartCommand runs at every start) leaves it alone.
    const again = await run(`${r}/usr/local/bin/gcp-gate-start`, [], { env });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already running/);
    assertNoSecrets(log() + res.stdout + res.stderr, stack.fake, "helper output");
    assert.equal(mode(`${r}/state/proxy.log`), 0o600);
  } finally {
    stopProxy(r);
  }
});

Deno.test("feature: gcp-gate-start waits for a socket that appears later", async () => {
  await using root = tempDir();
  await using fake = await startFakeGoogle();
  const r = root.path;
  const socket = `${r}/run/gcp-gate/gate.sock`;
  const env = await installFor(r, socket);
  // The helper starts first, as when the container comes up before the gate.
  await using helper = await start(`${r}/usr/local/bin/gcp-gate-start`, [], { env });
  try {
    Deno.mkdirSync(`${r}/run`, { mode: 0o700 });
    Deno.writeTextFileSync(`${r}/adc.json`, fake.adcJson(), { mode: 0o600 });
    const config = `${r}/gate.toml`;
    Deno.writeTextFileSync(
      config,
      `service_account = "${DEV_SA}"\nsocket_path = "${socket}"\ncredentials_file = "${r}/adc.json"\n${fake.endpointsToml()}`,
    );
    await using _gate = await start("gcp-gate", ["--config", config], {
      env: baseEnv(r),
      ready: /ready: listening on/,
    });
    const status = await helper.status;
    assert.equal(status.code, 0, helper.output());
    const addr = /serving (http:\/\/127\.0\.0\.1:\d+)/.exec(helper.stdout())?.[1];
    assert.ok(addr, helper.output());
    assert.equal((await tokenVia(addr)).status, 200);
  } finally {
    stopProxy(r);
  }
});

Deno.test("feature: gcp-gate-start gives up after its timeout with one clear line", async () => {
  await using root = tempDir();
  const r = root.path;
  const env = await installFor(r, `${r}/never/gate.sock`);
  const res = await run(`${r}/usr/local/bin/gcp-gate-start`, [], {
    env: { ...env, GCP_GATE_START_TIMEOUT: "1" },
  });
  assert.equal(res.code, 1);
  assert.match(
    res.stderr,
    /no gate socket at .*\/never\/gate\.sock after 1s; start gcp-gate on the host/,
  );
  assert.equal(res.stderr.trim().split("\n").length, 1);
});

Deno.test("feature: the example devcontainer.json and the README mount the socket dir read-only (string form)", () => {
  const jsonc = Deno.readTextFileSync(`${ROOT}/.devcontainer/devcontainer.json`);
  const example = JSON.parse(jsonc.split("\n").filter((l) => !/^\s*\/\//.test(l)).join("\n"));
  // The Dev Containers CLI drops `readonly` from the object form: only strings.
  assert.ok(Array.isArray(example.mounts) && example.mounts.length > 0);
  for (const m of example.mounts) assert.equal(typeof m, "string", JSON.stringify(m));
  const gate = example.mounts.filter((m: string) => m.includes("target=/run/gcp-gate"));
  assert.equal(gate.length, 1);
  assert.match(gate[0], /^type=bind,source=[^,]+\/gcp-gate,target=\/run\/gcp-gate,readonly$/);
  // No registry Feature: the example builds where ghcr.io is unreachable.
  assert.deepEqual(Object.keys(example.features), ["./gcp-gate-feature"]);
  const readme = Deno.readTextFileSync(`${ROOT}/README.md`);
  assert.match(
    readme,
    /"type=bind,source=\$\{localEnv:XDG_RUNTIME_DIR\}\/gcp-gate,target=\/run\/gcp-gate,readonly"/,
  );
  assert.doesNotMatch(
    readme,
    /\{ "type": "bind", "source": "\$\{localEnv:XDG_RUNTIME_DIR\}\/gcp-gate"/,
  );
});
