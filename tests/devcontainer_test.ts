// deno-lint-ignore-file no-console -- prints the phase timings, and why the test did not run
/**
 * A REAL devcontainer: a private dockerd, a Debian image made without a
 * registry, the Dev Containers CLI (`devcontainer up`) on a workspace using
 * the Feature exactly as `deno task release --feature` writes it, the gate's
 * socket directory bind-mounted read-only, `remoteUser` with
 * `updateRemoteUserUID`. The gate and the CLI run on the host as a non-root
 * user. The image has no Node and no npm, so the Feature downloads Deno's
 * npm package with curl and checks its pinned checksum.
 *
 * Inside, as the remote user: the mount is `ro`; curl gets a dev token from
 * 127.0.0.1:8173; Debian's python3-google-auth gets the same one through
 * google.auth.default(); gcp-kube-token prints an ExecCredential; with-prod
 * gets a prod token after a queue approval on the host. Nothing on the host
 * listens on 127.0.0.1:8173 (the container has its own loopback) and the
 * host gate's audit log records each grant: the tokens came through the
 * socket. Without the mount, `devcontainer up` fails with the Feature's one
 * line. When dockerd cannot start here the test says "not run" and why.
 */
import assert from "node:assert/strict";
import { type FakeGoogle, startFakeGoogle } from "./fakes/google.ts";
import {
  assertNoSecrets,
  baseEnv,
  BIN,
  DEV_SA,
  PROD_SA,
  QUEUE_PROD_TOML,
  start,
} from "./_utils.ts";
import {
  asCiUser,
  CACHE,
  CI_USER,
  ciUser,
  type CmdResult,
  devcontainerCli,
  dockerClient,
  type Dockerd,
  ensureBaseImage,
  missingPrerequisite,
  sh,
  startDockerd,
} from "./_docker.ts";
import { buildTestImage, findMount, workspace } from "./_devcontainer.ts";

const t0 = performance.now();
const phases: [string, number][] = [];
let last = t0;
function phase(name: string): void {
  const now = performance.now();
  phases.push([name, Math.round(now - last)]);
  last = now;
}

let reason = missingPrerequisite();
let dockerd: Dockerd | undefined;
let dir = "";
let lock: Deno.FsFile | undefined;
if (!reason) {
  try {
    // One run at a time: the data root and the docker0 bridge are shared.
    lock = await Deno.open(`${CACHE}/devcontainer-test.lock`, { write: true, create: true });
    await lock.lock(true);
    await ciUser();
    dir = Deno.makeTempDirSync({ prefix: "gcp-gate-dc-" });
    Deno.chmodSync(dir, 0o711);
    dockerd = await startDockerd(dir, CI_USER);
    phase("dockerd start");
    // A test filtered out must not leave the daemon behind.
    globalThis.addEventListener("unload", () => {
      try {
        Deno.kill(dockerd!.pid, "SIGTERM");
      } catch { /* stopped */ }
    });
  } catch (err) {
    reason = (err as Error).message.split("\n")[0];
  }
}
if (reason) console.warn(`devcontainer test not run: ${reason}`);

/** What every step needs: the daemon, the host user's paths and how to run the CLI as them. */
interface Ctx {
  readonly d: Dockerd;
  readonly user: { uid: number; gid: number };
  readonly fake: FakeGoogle;
  /** The CI user's home for this run (gate config, socket dir, workspaces). */
  readonly u: string;
  readonly ws: string;
  readonly wsNoSock: string;
  readonly env: Record<string, string>;
  /** CLI output, scanned for leaks at the end. */
  readonly outputs: string[];
  devcontainer(args: string[], timeoutMs?: number): Promise<CmdResult>;
  /** `devcontainer exec` of a shell script as the remote user. */
  exec(folder: string, script: string): Promise<CmdResult>;
  /** `gcp-gate <args> --config …` on the host, as the CI user. */
  gateCmd(args: string[]): Promise<CmdResult>;
}

async function context(d: Dockerd, fake: FakeGoogle): Promise<Ctx> {
  const user = await ciUser();
  const u = `${dir}/u`;
  const cli = await devcontainerCli();
  const docker = dockerClient()!;
  const env = baseEnv(u, {
    DOCKER_HOST: d.host,
    DENO_DIR: `${u}/deno`,
    XDG_RUNTIME_DIR: `${u}/run`,
  });
  const [setpriv, ...asUser] = asCiUser();
  const devcontainer = (args: string[], timeoutMs = 600_000) =>
    sh(setpriv!, [...asUser, "node", cli, ...args, "--docker-path", docker], { env, timeoutMs });
  return {
    d,
    user,
    fake,
    u,
    ws: `${u}/ws`,
    wsNoSock: `${u}/ws-nosock`,
    env,
    outputs: [],
    devcontainer,
    exec: (folder, script) =>
      devcontainer(["exec", "--workspace-folder", folder, "sh", "-c", script], 60_000),
    gateCmd: (args) =>
      sh(setpriv!, [...asUser, `${BIN}/gcp-gate`, ...args, "--config", `${u}/gate.toml`], {
        env,
        timeoutMs: 30_000,
      }),
  };
}

/** Images, workspaces and the gate's config, owned by the CI user. */
async function prepare(c: Ctx): Promise<void> {
  console.log(`devcontainer: base image: ${await ensureBaseImage(c.d)}`);
  phase("base image");
  const image = await buildTestImage(c.d, `${dir}/image`);
  phase("test image");
  await workspace({ root: c.u, ws: c.ws, wsNoSock: c.wsNoSock, image });
  phase("feature release");
  // The gate on the host: approvals through the queue (`gcp-gate approve`).
  Deno.writeTextFileSync(`${c.u}/adc.json`, c.fake.adcJson(), { mode: 0o600 });
  Deno.writeTextFileSync(
    `${c.u}/gate.toml`,
    [
      `project_id = "demo-project"`,
      `service_account = "${DEV_SA}"`,
      `socket_path = "${c.u}/run/gcp-gate/gate.sock"`,
      `credentials_file = "${c.u}/adc.json"`,
      QUEUE_PROD_TOML,
      c.fake.endpointsToml(),
    ].join("\n"),
  );
  Deno.mkdirSync(`${c.u}/run`, { mode: 0o700 });
  Deno.mkdirSync(`${c.u}/deno`);
  const own = await sh("chown", ["-R", `${c.user.uid}:${c.user.gid}`, c.u]);
  assert.equal(own.code, 0, own.stderr);
}

async function up(c: Ctx): Promise<void> {
  // --build-no-cache: the Feature's install.sh must really run (and download Deno) every time.
  const r = await c.devcontainer(["up", "--build-no-cache", "--workspace-folder", c.ws]);
  c.outputs.push(r.stdout, r.stderr);
  phase("devcontainer up");
  assert.equal(r.code, 0, `devcontainer up failed:\n${r.stderr.slice(-4000)}`);
  const result = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}");
  assert.equal(result.outcome, "success", r.stdout);
  assert.equal(result.remoteUser, "vscode");
  // No Node in the image: the Feature downloaded Deno and checked the pinned checksum.
  assert.match(r.stdout + r.stderr, /deno 2\.9\.6 .*sha512 verified/);
  // Nothing asked a Feature registry (ghcr.io is unreachable from these machines anyway).
  assert.doesNotMatch(r.stdout + r.stderr, /ghcr\.io/);
}

/** The remote user has the host user's uid (updateRemoteUserUID); the mount is read-only. */
async function checkUserAndMount(c: Ctx): Promise<void> {
  const r = await c.exec(c.ws, "id -u; cat /proc/self/mountinfo");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.split("\n")[0], String(c.user.uid));
  const mount = findMount(r.stdout, "/run/gcp-gate");
  assert.ok(mount, `no /run/gcp-gate in mountinfo:\n${r.stdout}`);
  assert.match(mount.options, /^ro(,|$)/, `mount options ${mount.options}`);
}

const TOKEN_URL =
  "http://127.0.0.1:8173/computeMetadata/v1/instance/service-accounts/default/token";

async function checkDevTokens(c: Ctx): Promise<void> {
  // Nothing on the host serves 127.0.0.1:8173: what answers inside is the container's proxy.
  await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: 8173 }));
  const curl = await c.exec(c.ws, `curl -sf -H 'Metadata-Flavor: Google' ${TOKEN_URL}`);
  assert.equal(curl.code, 0, curl.stderr);
  const devToken = JSON.parse(curl.stdout).access_token as string;
  assert.ok(c.fake.issued().some((i) => i.token === devToken && i.email === DEV_SA));

  const py = await c.exec(c.ws, "/usr/bin/python3 /workspaces/ws/python_metadata.py");
  assert.equal(py.code, 0, py.stderr);
  assert.match(py.stdout, new RegExp(`^token=${devToken}$`, "m"), "same token via google-auth");

  const kube = await c.exec(c.ws, "gcp-kube-token");
  assert.equal(kube.code, 0, kube.stderr);
  const cred = JSON.parse(kube.stdout);
  assert.equal(cred.kind, "ExecCredential");
  assert.ok(c.fake.issued().some((i) => i.token === cred.status.token && i.email === DEV_SA));
  phase("dev tokens");
}

/** with-prod: a prod token after the human approves the queued request on the host. */
async function checkWithProd(c: Ctx): Promise<void> {
  const script =
    `with-prod --reason e2e-devcontainer -- sh -c 'curl -sf -H "Metadata-Flavor: Google" "http://$GCE_METADATA_HOST/computeMetadata/v1/instance/service-accounts/default/token"'`;
  const prod = c.devcontainer(["exec", "--workspace-folder", c.ws, "sh", "-c", script], 90_000);
  let approved = false;
  const deadline = Date.now() + 60_000;
  while (!approved && Date.now() < deadline) {
    const id = /^(\S+) {2}\(waiting/m.exec((await c.gateCmd(["pending"])).stdout)?.[1];
    if (id) {
      const ok = await c.gateCmd(["approve", id, "--yes"]);
      assert.equal(ok.code, 0, ok.stderr);
      approved = true;
    } else await new Promise((r) => setTimeout(r, 150));
  }
  const p = await prod;
  assert.ok(approved, `with-prod's request never reached the queue: ${p.stderr}`);
  assert.equal(p.code, 0, p.stderr);
  const prodToken = JSON.parse(p.stdout.trim().split("\n").pop()!).access_token as string;
  assert.ok(c.fake.issued().some((i) => i.token === prodToken && i.email === PROD_SA));
  phase("with-prod");
}

/** The mount stops socket replacement; the host's audit log saw every grant; nothing leaked. */
async function checkSocketAndAudit(c: Ctx, gateOutput: string): Promise<void> {
  const mv = await c.exec(c.ws, "mv /run/gcp-gate/gate.sock /run/gcp-gate/x 2>&1; echo rc=$?");
  assert.match(mv.stdout, /Read-only file system/);
  assert.doesNotMatch(mv.stdout, /rc=0/);
  const audit = Deno.readTextFileSync(`${c.u}/.local/state/gcp-gate/audit.log`);
  assert.match(audit, /"endpoint":"\/token","level":"dev","result":"granted"/);
  assert.match(audit, /"level":"prod","result":"granted".*"reason":"e2e-devcontainer"/);
  assertNoSecrets(audit + gateOutput + c.outputs.join("\n"), c.fake, "gate, audit, CLI");
}

/** No socket mounted: `up` fails with the Feature's helper's one line. */
async function checkFailurePath(c: Ctx): Promise<void> {
  const bad = await c.devcontainer(["up", "--workspace-folder", c.wsNoSock]);
  c.outputs.push(bad.stdout, bad.stderr);
  phase("failure path");
  assert.notEqual(bad.code, 0, "devcontainer up without the socket must fail");
  assert.match(
    bad.stdout + bad.stderr,
    /gcp-gate-start: no gate socket at \/run\/gcp-gate\/gate\.sock/,
  );
}

/** Removes this run's containers and the CLI's images; the base and test images stay cached. */
async function teardown(c: Ctx): Promise<void> {
  for (const folder of [c.ws, c.wsNoSock]) {
    const ids = await c.d.docker([
      "ps",
      "-aq",
      "--filter",
      `label=devcontainer.local_folder=${folder}`,
    ]);
    const list = ids.stdout.split("\n").filter((l) => l);
    if (list.length) await c.d.docker(["rm", "-f", ...list]);
  }
  const vsc = await c.d.docker([
    "images",
    "--format",
    "{{.Repository}}:{{.Tag}}",
    "--filter",
    "reference=vsc-*",
  ]);
  const tags = vsc.stdout.split("\n").filter((l) => l);
  if (tags.length) await c.d.docker(["rmi", "-f", ...tags]);
  await c.d.docker(["image", "prune", "-f"]);
}

Deno.test({
  name: `devcontainer: a real devcontainer gets tokens only through the read-only socket mount${
    reason ? ` (not run: ${reason})` : ""
  }`,
  ignore: reason !== undefined,
  // dockerd lives from module load to the end of this test.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const fake = await startFakeGoogle();
    const c = await context(dockerd!, fake);
    try {
      phase("setup");
      await prepare(c);
      await using gate = await start(
        "gcp-gate",
        [...asCiUser().slice(1), `${BIN}/gcp-gate`, "--config", `${c.u}/gate.toml`],
        { command: "setpriv", env: c.env, ready: /ready: listening on/ },
      );
      phase("gate start");
      await up(c);
      await checkUserAndMount(c);
      await checkDevTokens(c);
      await checkWithProd(c);
      await checkSocketAndAudit(c, gate.output());
      await checkFailurePath(c);
    } finally {
      await teardown(c);
      await c.d.stop();
      await fake.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      lock?.close();
      phase("teardown");
      const t = phases.map(([n, ms]) => `${n} ${(ms / 1000).toFixed(1)}s`).join(", ");
      console.log(
        `devcontainer timing: ${t}; total ${((performance.now() - t0) / 1000).toFixed(1)}s`,
      );
    }
  },
});
