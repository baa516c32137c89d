/**
 * gcp-metadata-proxy under hostile local load, through the built launchers:
 * it survives running out of file descriptors (EMFILE) and keeps serving, and
 * the Feature's gcp-gate-start restarts it when it dies, so no other process
 * can take its port.
 */
import assert from "node:assert/strict";
import { baseEnv, BIN, ROOT, run, start, startStack, tempDir } from "./_utils.ts";

const TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token";
const READY = /listening on http:\/\/(127\.0\.0\.1:\d+)/;

async function token(hostPort: string): Promise<number> {
  const res = await fetch(`http://${hostPort}${TOKEN_PATH}`, {
    headers: { "metadata-flavor": "Google" },
    signal: AbortSignal.timeout(10_000),
  });
  await res.body?.cancel();
  return res.status;
}

Deno.test("proxy: out of file descriptors, it logs once, keeps serving and does not exit", async () => {
  await using stack = await startStack({ proxy: false });
  // 64 descriptors: the flood below takes them all.
  await using proxy = await start("/bin/sh", [
    "-c",
    `ulimit -n 64 && exec "${BIN}/gcp-metadata-proxy" --config "${stack.configPath}" --port 0`,
  ], { command: "/bin/sh", env: baseEnv(stack.home), ready: READY });
  const hostPort = (await proxy.waitFor(READY))[1]!;
  // Cache the token first: under EMFILE the proxy cannot open a gate connection either.
  assert.equal(await token(hostPort), 200, proxy.output());
  const flood: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 120; i++) {
      flood.push(
        await Deno.connect({ hostname: "127.0.0.1", port: Number(hostPort.split(":")[1]) }),
      );
    }
    await proxy.waitFor(/out of file descriptors/);
    // A new client is served while the flood is still connected.
    assert.equal(await token(hostPort), 200, proxy.output());
    assert.equal(await token(hostPort), 200, proxy.output());
  } finally {
    for (const c of flood) {
      try {
        c.close();
      } catch { /* closed by the proxy */ }
    }
  }
  assert.equal(await token(hostPort), 200, proxy.output());
  const warnings = proxy.output().match(/out of file descriptors/g) ?? [];
  assert.equal(warnings.length, 1, "logged once, not per failed accept");
  // Still alive: it did not exit on EMFILE.
  proxy.kill("SIGTERM");
  const status = await proxy.status;
  assert.equal(status.code, 0, proxy.output());
});

Deno.test("proxy: --max-connections and --idle-timeout-seconds bound what idle clients hold", async () => {
  await using stack = await startStack({ proxy: false });
  await using proxy = await start("gcp-metadata-proxy", [
    "--config",
    stack.configPath,
    "--port",
    "0",
    "--max-connections",
    "8",
    "--idle-timeout-seconds",
    "1",
  ], { env: baseEnv(stack.home), ready: READY });
  const hostPort = (await proxy.waitFor(READY))[1]!;
  const port = Number(hostPort.split(":")[1]);
  const flood: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 40; i++) flood.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    // Served at once: the longest-idle connections made room.
    assert.equal(await token(hostPort), 200, proxy.output());
    await proxy.waitFor(/connection cap reached/);
    // After the idle timeout every flood connection has been closed by the proxy.
    const t0 = Date.now();
    for (const c of flood) assert.equal(await c.read(new Uint8Array(16)), null);
    assert.ok(Date.now() - t0 < 5000);
  } finally {
    for (const c of flood) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  }
});

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("feature: gcp-gate-start restarts a killed proxy, logs it, and TERM stops both", async () => {
  await using stack = await startStack({ proxy: false });
  await using root = tempDir();
  const r = root.path;
  const inst = await run("/bin/sh", [`${ROOT}/devcontainer/feature/install.sh`], {
    env: baseEnv(r, {
      GCP_GATE_INSTALL_ROOT: r,
      GCP_GATE_PAYLOAD: `${ROOT}/dist`,
      SOCKETPATH: stack.socketPath,
      PORT: "0",
    }),
  });
  assert.equal(inst.code, 0, inst.stderr);
  const env = baseEnv(r, {
    GCP_GATE_CONFIG: `${r}/etc/gcp-gate/config.toml`,
    GCP_GATE_STATE_DIR: `${r}/state`,
    GCP_GATE_START_TIMEOUT: "20",
  });
  const log = (): string => {
    try {
      return Deno.readTextFileSync(`${r}/state/proxy.log`);
    } catch {
      return "";
    }
  };
  const pidOf = (f: string): number => Number(Deno.readTextFileSync(`${r}/state/${f}`).trim());
  const res = await run(`${r}/usr/local/bin/gcp-gate-start`, [], { env });
  assert.equal(res.code, 0, `${res.stderr}\n${log()}`);
  const supervisor = pidOf("proxy.pid");
  try {
    const first = pidOf("proxy.child.pid");
    Deno.kill(first, "SIGKILL");
    await until(() => (log().match(/listening on http:\/\//g) ?? []).length >= 2, "a restart");
    assert.match(log(), /gcp-metadata-proxy exited \(status 137\) after \d+s; restarting in 0\.2s/);
    const second = pidOf("proxy.child.pid");
    assert.notEqual(second, first);
    // Port 0 here: the restarted proxy has a new one; it serves tokens.
    const addrs = [...log().matchAll(/listening on http:\/\/(127\.0\.0\.1:\d+)/g)];
    assert.equal(await token(addrs.at(-1)![1]!), 200, log());
    Deno.kill(supervisor, "SIGTERM");
    await until(() => !alive(supervisor) && !alive(second), "supervisor and proxy to stop");
  } finally {
    for (const f of ["proxy.child.pid", "proxy.pid"]) {
      try {
        Deno.kill(pidOf(f), "SIGKILL");
      } catch { /* gone */ }
    }
  }
});
