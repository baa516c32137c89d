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
import { startFakeGoogle } from "./fakes/google.ts";
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

Deno.test({
  name: `devcontainer: a real devcontainer gets tokens only through the read-only socket mount${
    reason ? ` (not run: ${reason})` : ""
  }`,
  ignore: reason !== undefined,
  // dockerd lives from module load to the end of this test.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const d = dockerd!;
    const user = await ciUser();
    const fake = await startFakeGoogle();
    const u = `${dir}/u`;
    const ws = `${u}/ws`;
    const wsNoSock = `${u}/ws-nosock`;
    const cli = await devcontainerCli();
    const docker = dockerClient()!;
    const env = baseEnv(u, {
      DOCKER_HOST: d.host,
      DENO_DIR: `${u}/deno`,
      XDG_RUNTIME_DIR: `${u}/run`,
    });
    const devcontainer = (args: string[], timeoutMs = 600_000) =>
      sh(asCiUser()[0]!, [...asCiUser().slice(1), "node", cli, ...args, "--docker-path", docker], {
        env,
        timeoutMs,
      });
    const exec = (folder: string, script: string) =>
      devcontainer(["exec", "--workspace-folder", folder, "sh", "-c", script], 60_000);
    const outputs: string[] = [];
    try {
      phase("setup");
      console.log(`devcontainer: base image: ${await ensureBaseImage(d)}`);
      phase("base image");
      const image = await buildTestImage(d, `${dir}/image`);
      phase("test image");
      await workspace({ root: u, ws, wsNoSock, image });
      phase("feature release");

      // The gate on the host, as the non-root user, approvals through the queue.
      Deno.writeTextFileSync(`${u}/adc.json`, fake.adcJson(), { mode: 0o600 });
      const config = `${u}/gate.toml`;
      Deno.writeTextFileSync(
        config,
        [
          `project_id = "demo-project"`,
          `service_account = "${DEV_SA}"`,
          `socket_path = "${u}/run/gcp-gate/gate.sock"`,
          `credentials_file = "${u}/adc.json"`,
          QUEUE_PROD_TOML,
          fake.endpointsToml(),
        ].join("\n"),
      );
      Deno.mkdirSync(`${u}/run`, { mode: 0o700 });
      Deno.mkdirSync(`${u}/deno`);
      await sh("chown", ["-R", `${user.uid}:${user.gid}`, u]);
      await using gate = await start(
        "gcp-gate",
        [...asCiUser().slice(1), `${BIN}/gcp-gate`, "--config", config],
        { command: "setpriv", env, ready: /ready: listening on/ },
      );
      const gateCmd = (args: string[]) =>
        sh("setpriv", [...asCiUser().slice(1), `${BIN}/gcp-gate`, ...args, "--config", config], {
          env,
          timeoutMs: 30_000,
        });
      phase("gate start");

      const up = await devcontainer(["up", "--workspace-folder", ws]);
      outputs.push(up.stdout, up.stderr);
      phase("devcontainer up");
      const result = JSON.parse(up.stdout.trim().split("\n").pop() ?? "{}");
      assert.equal(up.code, 0, `devcontainer up failed:\n${up.stderr.slice(-4000)}`);
      assert.equal(result.outcome, "success", up.stdout);
      assert.equal(result.remoteUser, "vscode");
      assert.match(up.stdout + up.stderr, /deno 2\.9\.6 .*sha512 verified/);

      // The remote user has the host user's uid (updateRemoteUserUID) and the mount is read-only.
      const id = await exec(ws, "id -u; cat /proc/self/mountinfo");
      assert.equal(id.code, 0, id.stderr);
      assert.equal(id.stdout.split("\n")[0], String(user.uid));
      const mount = findMount(id.stdout, "/run/gcp-gate");
      assert.ok(mount, `no /run/gcp-gate in mountinfo:\n${id.stdout}`);
      assert.match(mount.options, /^ro(,|$)/, `mount options ${mount.options}`);

      // Nothing on the host serves 127.0.0.1:8173: what answers inside is the container's proxy.
      await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: 8173 }));

      const curl = await exec(
        ws,
        "curl -sf -H 'Metadata-Flavor: Google' http://127.0.0.1:8173/computeMetadata/v1/instance/service-accounts/default/token",
      );
      assert.equal(curl.code, 0, curl.stderr);
      const devToken = JSON.parse(curl.stdout).access_token as string;
      assert.ok(fake.issued().some((i) => i.token === devToken && i.email === DEV_SA));

      const py = await exec(ws, "/usr/bin/python3 /workspaces/ws/python_metadata.py");
      assert.equal(py.code, 0, py.stderr);
      assert.match(py.stdout, new RegExp(`^token=${devToken}$`, "m"), "same token via google-auth");

      const kube = await exec(ws, "gcp-kube-token");
      assert.equal(kube.code, 0, kube.stderr);
      const cred = JSON.parse(kube.stdout);
      assert.equal(cred.kind, "ExecCredential");
      assert.ok(fake.issued().some((i) => i.token === cred.status.token && i.email === DEV_SA));
      phase("dev tokens");

      // with-prod: a prod token after the human approves the queued request on the host.
      const prodCmd =
        `with-prod --reason e2e-devcontainer -- sh -c 'curl -sf -H "Metadata-Flavor: Google" "http://$GCE_METADATA_HOST/computeMetadata/v1/instance/service-accounts/default/token"'`;
      const prod = devcontainer(["exec", "--workspace-folder", ws, "sh", "-c", prodCmd], 90_000);
      let approved = false;
      for (let i = 0; i < 200 && !approved; i++) {
        const pending = await gateCmd(["pending"]);
        const qid = /^(\S+) {2}\(waiting/m.exec(pending.stdout)?.[1];
        if (qid) {
          const ok = await gateCmd(["approve", qid, "--yes"]);
          assert.equal(ok.code, 0, ok.stderr);
          approved = true;
        } else await new Promise((r) => setTimeout(r, 150));
      }
      assert.ok(approved, "with-prod's request never reached the queue");
      const p = await prod;
      assert.equal(p.code, 0, p.stderr);
      const prodToken = JSON.parse(p.stdout.trim().split("\n").pop()!).access_token as string;
      assert.ok(fake.issued().some((i) => i.token === prodToken && i.email === PROD_SA));
      phase("with-prod");

      // The read-only mount stops a same-uid process from replacing the socket.
      const mv = await exec(ws, "mv /run/gcp-gate/gate.sock /run/gcp-gate/x 2>&1; echo rc=$?");
      assert.match(mv.stdout, /Read-only file system/);
      assert.doesNotMatch(mv.stdout, /rc=0/);

      // The host gate's audit log saw each grant.
      const audit = Deno.readTextFileSync(`${u}/.local/state/gcp-gate/audit.log`);
      assert.match(audit, /"endpoint":"\/token","level":"dev","result":"granted"/);
      assert.match(audit, /"level":"prod","result":"granted".*"reason":"e2e-devcontainer"/);
      assertNoSecrets(audit + gate.output() + outputs.join("\n"), fake, "gate, audit, CLI");

      // Failure path: no socket mounted → `up` fails with the Feature's one line.
      const bad = await devcontainer(["up", "--workspace-folder", wsNoSock]);
      outputs.push(bad.stdout, bad.stderr);
      phase("failure path");
      assert.notEqual(bad.code, 0, "devcontainer up without the socket must fail");
      assert.match(
        bad.stdout + bad.stderr,
        /gcp-gate-start: no gate socket at \/run\/gcp-gate\/gate\.sock/,
      );
    } finally {
      for (const folder of [ws, wsNoSock]) {
        const ids = await d.docker([
          "ps",
          "-aq",
          "--filter",
          `label=devcontainer.local_folder=${folder}`,
        ]);
        const list = ids.stdout.split("\n").filter((l) => l);
        if (list.length) await d.docker(["rm", "-f", ...list]);
      }
      // Images the CLI built for these temp workspaces; the base and test images stay cached.
      const vsc = await d.docker([
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        "--filter",
        "reference=vsc-*",
      ]);
      const tags = vsc.stdout.split("\n").filter((l) => l);
      if (tags.length) await d.docker(["rmi", "-f", ...tags]);
      await d.docker(["image", "prune", "-f"]);
      await d.stop();
      await fake.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      lock?.close();
      phase("teardown");
      console.log(
        `devcontainer timing: ${
          phases.map(([n, ms]) => `${n} ${(ms / 1000).toFixed(1)}s`).join(", ")
        }; total ${((performance.now() - t0) / 1000).toFixed(1)}s`,
      );
    }
  },
});
