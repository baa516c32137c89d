/**
 * Remote devcontainers over real OpenSSH, as docs/remote.md tells a person to
 * set them up: the gate runs as the laptop user (root here); a private sshd on
 * 127.0.0.1 stands for the remote host, with a second local user as the
 * remote account; `gcp-gate ssh-config` writes the forward; the proxy runs as
 * the remote user behind a read-only bind mount of the forwarded socket's
 * directory (the container's view); a real client gets a dev token; with-prod
 * in an ssh session on the remote host gets prod access after a queue
 * approval; the forward drops and comes back without a proxy restart.
 */
import assert from "node:assert/strict";
import {
  assertNoSecrets,
  baseEnv,
  BIN,
  DEV_SA,
  PROD_SA,
  QUEUE_PROD_TOML,
  ROOT,
  run,
  type RunningProcess,
  type Stack,
  start,
  startStack,
  tempDir,
} from "./_utils.ts";
import {
  asUser,
  ensureRemoteUser,
  type RemoteUser,
  sshUnavailable,
  startPrivateSshd,
} from "./_sshd.ts";

const SKIP = sshUnavailable();
const HOST = "build-vm-3";
const TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token";
const NEW_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only";

/** Waits until something accepts connections on the Unix socket `path`. */
async function waitForSocket(
  path: string,
  logs: () => string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const c = await Deno.connect({ transport: "unix", path });
      c.close();
      return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${path} after ${timeoutMs} ms\n${logs()}`);
}

async function metadata(
  hostPort: string,
  path: string,
): Promise<{ status: number; body: string; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`http://${hostPort}${path}`, {
    headers: { "Metadata-Flavor": "Google" },
    signal: AbortSignal.timeout(10_000),
  });
  const body = await res.text();
  return { status: res.status, body, ms: performance.now() - t0 };
}

/** Polls `gcp-gate pending` until a request waits; returns its id and the listing. */
async function nextPending(stack: Stack): Promise<{ id: string; listing: string }> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const r = await run("gcp-gate", ["pending", "--config", stack.configPath], {
      env: baseEnv(stack.home),
    });
    const id = /^(\S+) {2}\(waiting/m.exec(r.stdout)?.[1];
    if (id) return { id, listing: r.stdout };
    await new Promise((res) => setTimeout(res, 150));
  }
  throw new Error(`no prod request queued\n${stack.logs()}`);
}

/** The proxy as the remote user, seeing the socket directory through a read-only bind mount. */
function startRemoteProxy(user: RemoteUser, socketDir: string): Promise<RunningProcess> {
  return start("gcp-metadata-proxy", [
    "-m",
    "sh",
    "-c",
    'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"',
    socketDir,
    ...asUser(user),
    "env",
    "-i",
    `HOME=${user.home}`,
    "PATH=/usr/local/bin:/usr/bin:/bin",
    `${BIN}/gcp-metadata-proxy`,
    "--port",
    "0",
  ], { command: "unshare", ready: /listening on http:\/\/(127\.0\.0\.1:\d+)/, cwd: "/" });
}

Deno.test({
  name: "remote over OpenSSH: ssh-config forward, dev token, with-prod approval, drop and recover",
  ignore: SKIP !== undefined,
  sanitizeResources: false,
  fn: async () => {
    const user = ensureRemoteUser();
    await using sshd = await startPrivateSshd(user);
    await using stack = await startStack({ proxy: false, gateToml: QUEUE_PROD_TOML });
    await using client = tempDir("gcp-gate-ssh-client-");

    // 1. The stanza, exactly as printed, plus how to reach this test's sshd.
    const printed = await run("gcp-gate", ["ssh-config", HOST, "--config", stack.configPath], {
      env: baseEnv(stack.home),
    });
    assert.equal(printed.code, 0, printed.stderr);
    const cfg = `${client.path}/ssh_config`;
    Deno.writeTextFileSync(cfg, `${printed.stdout}\n${sshd.connectionLines(HOST, user.name)}`);
    const g = await run("ssh", ["-G", "-F", cfg, HOST], { command: "ssh" });
    assert.equal(g.code, 0, g.stderr);
    const remoteSocket = `${user.home}/.gcp-gate/gate.sock`;
    const forward = /^remoteforward (\S+) (\S+)$/m.exec(g.stdout);
    assert.deepEqual(forward?.slice(1), [remoteSocket, stack.socketPath], g.stdout);
    assert.match(g.stdout, /^exitonforwardfailure yes$/m);
    assert.match(g.stdout, /^streamlocalbindunlink yes$/m);

    // 2. The remote side's one-time step from the notes: mkdir -m 700 -p ~/.gcp-gate.
    const socketDir = `${user.home}/.gcp-gate`;
    await run("mkdir", [...asUser(user).slice(1), "mkdir", "-m", "700", "-p", socketDir], {
      command: "setpriv",
    });
    Deno.mkdirSync(`${user.home}/.config/gcp-gate`, { recursive: true });
    // Remote-host config: with-prod below runs in an ssh session on the host
    // itself (no container), where the socket directory is the user's own.
    Deno.writeTextFileSync(
      `${user.home}/.config/gcp-gate/config.toml`,
      `socket_path = "${remoteSocket}"\nallow_writable_socket_dir = true\n`,
    );
    await run("chown", ["-R", `${user.uid}:${user.gid}`, `${user.home}/.config`], {
      command: "chown",
    });

    const sshArgs = ["-F", cfg, "-N", HOST];
    let ssh = await start("ssh", sshArgs, { command: "ssh" });
    let proxy: RunningProcess | undefined;
    try {
      await waitForSocket(remoteSocket, () => ssh.output() + sshd.process.output());
      const st = Deno.statSync(remoteSocket);
      assert.equal(st.uid, user.uid, "sshd creates the socket as the remote user");
      assert.equal((st.mode ?? 0) & 0o777, 0o600);

      // 3. The proxy as the remote user; a real client gets a dev token.
      proxy = await startRemoteProxy(user, socketDir);
      const hostPort = (await proxy.waitFor(/listening on http:\/\/(127\.0\.0\.1:\d+)/))[1]!;
      assert.doesNotMatch(proxy.output(), /writable|refusing/, proxy.output());
      const node = await run(Deno.execPath(), [
        "run",
        "-A",
        "--quiet",
        `${ROOT}/tests/clients/node_token.ts`,
      ], {
        env: baseEnv(stack.home, {
          GCE_METADATA_HOST: hostPort,
          GCE_METADATA_IP: hostPort,
          GCE_METADATA_ROOT: hostPort,
          NO_PROXY: "127.0.0.1,localhost",
        }),
        timeoutMs: 60_000,
      });
      assert.equal(node.code, 0, node.stderr + proxy.output());
      const token = /^token=(\S+)$/m.exec(node.stdout)?.[1];
      assert.equal(stack.fake.issued().find((t) => t.token === token)?.email, DEV_SA);

      // 4. with-prod in an ssh session on the remote host, approved on the laptop.
      // The wrapped command asks with-prod's proxy for a token (prints the status only).
      const probeFile = `${user.home}/probe.ts`;
      Deno.writeTextFileSync(
        probeFile,
        `const r = await fetch("http://" + Deno.env.get("GCE_METADATA_HOST") + "${TOKEN_PATH}", { headers: { "Metadata-Flavor": "Google" } });\nawait r.body?.cancel();\nconsole.log("prod=" + r.status);\n`,
        { mode: 0o644 },
      );
      const probe = [Deno.execPath(), "run", "--quiet", "--no-config", "-A", probeFile];
      const wrapped = await start("ssh", [
        "-F",
        cfg,
        "-o",
        "ClearAllForwardings=yes", // this session must not take over the forward
        HOST,
        `${BIN}/with-prod`,
        "--",
        ...probe,
      ], { command: "ssh" });
      const { id, listing } = await nextPending(stack);
      assert.match(listing, /^ {2}From: +\S+ via ssh \(as stated by the caller; advisory\)$/m);
      const ok = await run("gcp-gate", ["approve", id, "--yes", "--config", stack.configPath], {
        env: baseEnv(stack.home),
      });
      assert.equal(ok.code, 0, ok.stderr);
      const wrapStatus = await wrapped.status;
      assert.equal(wrapStatus.code, 0, wrapped.output());
      assert.match(wrapped.stdout(), /prod=200/);
      assert.ok(stack.fake.issued().some((t) => t.email === PROD_SA), "a prod token was minted");

      // 4b. with-prod in the "container": the remote user behind the read-only
      // mount, without the opt-out (the setup docs/remote.md recommends).
      const inContainer = await start("with-prod", [
        "-m",
        "sh",
        "-c",
        'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"',
        socketDir,
        ...asUser(user),
        "env",
        "-i",
        `HOME=${user.home}`,
        "PATH=/usr/bin:/bin",
        "GCP_GATE_ALLOW_WRITABLE_SOCKET_DIR=false",
        `${BIN}/with-prod`,
        "--",
        ...probe,
      ], { command: "unshare", cwd: "/" });
      const second = await nextPending(stack);
      assert.match(
        second.listing,
        /^ {2}From: +[A-Za-z0-9._-]+ \(as stated by the caller; advisory\)$/m,
      );
      const ok2 = await run("gcp-gate", [
        "approve",
        second.id,
        "--yes",
        "--config",
        stack.configPath,
      ], {
        env: baseEnv(stack.home),
      });
      assert.equal(ok2.code, 0, ok2.stderr);
      assert.equal((await inContainer.status).code, 0, inContainer.output());
      assert.match(inContainer.stdout(), /prod=200/);
      assertNoSecrets(inContainer.output(), stack.fake, "with-prod (container) output");

      // 5. The forward drops: cached token still served, a new scope gets 503 + reason, fast.
      ssh.kill("SIGTERM");
      await ssh.status;
      const cached = await metadata(hostPort, TOKEN_PATH);
      assert.equal(cached.status, 200, cached.body);
      const cachedToken = (JSON.parse(cached.body) as { access_token?: string }).access_token;
      assert.ok(cachedToken === token, "the token served while the gate is away is the cached one");
      const fresh = await metadata(hostPort, `${TOKEN_PATH}?scopes=${NEW_SCOPE}`);
      assert.equal(fresh.status, 503, fresh.body);
      assert.match(fresh.body, /gate socket .* exists but nothing answers/);
      assert.ok(fresh.ms < 3000, `503 after ${fresh.ms} ms: within a client's 3 s deadline`);
      // with-prod started now fails at once, before any approval code is shown.
      const t0 = performance.now();
      const lost = await run("with-prod", [
        ...asUser(user).slice(1),
        "env",
        "-i",
        `HOME=${user.home}`,
        "PATH=/usr/bin:/bin",
        `${BIN}/with-prod`,
        "--",
        "true",
      ], { command: "setpriv", cwd: "/" });
      const lostMs = performance.now() - t0;
      assert.equal(lost.code, 1, lost.stderr);
      assert.match(
        lost.stderr.trim(),
        /^with-prod: gate socket \S+ exists but nothing answers — restart gcp-gate on the host \(over ssh: reconnect the ssh session that forwards the gate socket\)$/,
      );
      assert.ok(lostMs < 5000, `with-prod took ${lostMs} ms to give up`);

      // 6. ssh comes back (sshd replaces the stale socket): the next request succeeds.
      ssh = await start("ssh", sshArgs, { command: "ssh" });
      await waitForSocket(remoteSocket, () => ssh.output() + sshd.process.output());
      const back = await metadata(hostPort, `${TOKEN_PATH}?scopes=${NEW_SCOPE}`);
      assert.equal(back.status, 200, back.body + proxy.output());

      for (const [name, p] of [["proxy", proxy], ["with-prod", wrapped]] as const) {
        assertNoSecrets(p.output(), stack.fake, `${name} output`);
      }
    } finally {
      await proxy?.[Symbol.asyncDispose]();
      await ssh[Symbol.asyncDispose]();
    }
  },
});
