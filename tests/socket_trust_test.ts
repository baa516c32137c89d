/**
 * Container-side socket trust, through the built launchers: with-prod refuses
 * a socket directory it can write (unless read-only mounted or explicitly
 * accepted), the proxy warns about it once; both refuse a socket that is
 * group/other accessible or planted by another uid, with the documented line.
 * The read-only case is a real read-only bind mount in a private mount
 * namespace (`unshare -m`), as a container sees `readonly` in devcontainer.json.
 */
import assert from "node:assert/strict";
import {
  approveNext,
  baseEnv,
  BIN,
  QUEUE_PROD_TOML,
  run,
  type Stack,
  start,
  startStack,
} from "./_utils.ts";

const TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token";

/** True when this process may make a private mount namespace with a bind mount (root + unshare). */
function canUnshareMount(): boolean {
  try {
    const out = new Deno.Command("unshare", {
      args: ["-m", "sh", "-c", "mount --bind -o ro /tmp /tmp && mount -o remount,bind,ro /tmp"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return out.success;
  } catch {
    return false;
  }
}
const HAVE_UNSHARE = canUnshareMount();
const IS_ROOT = Deno.uid() === 0;

/** A with-prod config next to the stack's, WITHOUT the stack's opt-out. */
function wrapConfig(stack: Stack, extra = ""): string {
  const path = `${stack.home}/wrap.toml`;
  Deno.writeTextFileSync(path, `socket_path = "${stack.socketPath}"\n${extra}\n`);
  return path;
}

function wrapEnv(stack: Stack, config: string): Record<string, string> {
  return baseEnv(stack.home, { GCP_GATE_CONFIG: config });
}

/** Runs `argv` in a private mount namespace where `dir` is bind-mounted read-only. */
function readOnly(dir: string, argv: string[]): { command: string; args: string[] } {
  return {
    command: "unshare",
    args: [
      "-m",
      "sh",
      "-c",
      // remount: older util-linux ignores -o ro on the first --bind.
      'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"',
      dir,
      ...argv,
    ],
  };
}

Deno.test("with-prod refuses a writable socket directory: why, the readonly mount, the opt-out", async () => {
  await using stack = await startStack({ proxy: false, gateToml: QUEUE_PROD_TOML });
  const cfg = wrapConfig(stack);
  const r = await run("with-prod", ["--", "true"], { env: wrapEnv(stack, cfg) });
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(
    lines[0]!,
    /^with-prod: refusing to ask for prod access through .*gate\.sock: its directory is not a read-only mount \(.*\).*"type=bind,source=.*,target=\/run\/gcp-gate,readonly".*allow_writable_socket_dir = true$/,
  );
  assert.doesNotMatch(r.stderr, /approval code/, "refused before any approval code is shown");
  const pending = await run("gcp-gate", ["pending", "--config", stack.configPath], {
    env: baseEnv(stack.home),
  });
  assert.match(pending.stdout, /No prod request is waiting/, "nothing reached the gate's queue");
});

Deno.test("the proxy warns once at start about a writable socket directory, not when read-only", {
  ignore: !HAVE_UNSHARE,
}, async () => {
  await using stack = await startStack({ proxy: false });
  const cfg = wrapConfig(stack, "port = 0");
  const ready = /listening on http:\/\/(127\.0\.0\.1:\d+)/;
  {
    await using proxy = await start("gcp-metadata-proxy", ["--config", cfg], {
      env: wrapEnv(stack, cfg),
      ready,
    });
    const warnings = proxy.output().match(/warn: the gate socket's directory is writable/g) ?? [];
    assert.equal(warnings.length, 1, proxy.output());
    assert.match(proxy.output(), /target=\/run\/gcp-gate,readonly/);
  }
  const dir = stack.socketPath.replace(/\/[^/]+$/, "");
  const ro = readOnly(dir, [`${BIN}/gcp-metadata-proxy`, "--config", cfg]);
  await using proxy = await start("gcp-metadata-proxy", ro.args, {
    command: ro.command,
    env: wrapEnv(stack, cfg),
    ready,
  });
  const hostPort = (await proxy.waitFor(ready))[1];
  const res = await fetch(`http://${hostPort}${TOKEN_PATH}`, {
    headers: { "Metadata-Flavor": "Google" },
  });
  await res.body?.cancel();
  assert.equal(res.status, 200, "connect() works through the read-only mount");
  assert.doesNotMatch(proxy.output(), /writable/, proxy.output());
});

Deno.test("with-prod asks for prod access through a read-only bind mount of the socket directory", {
  ignore: !HAVE_UNSHARE,
}, async () => {
  await using stack = await startStack({ proxy: false, gateToml: QUEUE_PROD_TOML });
  const cfg = wrapConfig(stack);
  const dir = stack.socketPath.replace(/\/[^/]+$/, "");
  // Inside the namespace the relay attack's first step fails: rename → EROFS.
  const probe = readOnly(dir, ["mv", stack.socketPath, `${dir}/moved.sock`]);
  const mv = await run("unshare", probe.args, { command: probe.command });
  assert.notEqual(mv.code, 0);
  assert.match(mv.stderr, /Read-only file system/);

  const ro = readOnly(dir, [`${BIN}/with-prod`, "--", "true"]);
  await using p = await start("with-prod", ro.args, {
    command: ro.command,
    env: wrapEnv(stack, cfg),
  });
  await approveNext(stack);
  const status = await p.status;
  assert.equal(status.code, 0, p.output());
  assert.doesNotMatch(p.output(), /refusing/);
});

async function assertBothRefuse(stack: Stack, expected: RegExp): Promise<void> {
  const cfg = wrapConfig(stack, "allow_writable_socket_dir = true\nport = 0");
  const env = wrapEnv(stack, cfg);
  const r = await run("with-prod", ["--", "true"], { env });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr.trim(), new RegExp(`^with-prod: ${expected.source}$`));
  assert.doesNotMatch(r.stderr, /approval code/);

  const ready = /listening on http:\/\/(127\.0\.0\.1:\d+)/;
  await using proxy = await start("gcp-metadata-proxy", ["--config", cfg], { env, ready });
  const hostPort = (await proxy.waitFor(ready))[1];
  assert.match(proxy.output(), new RegExp(`error: ${expected.source}`), "reported at start");
  const res = await fetch(`http://${hostPort}${TOKEN_PATH}`, {
    headers: { "Metadata-Flavor": "Google" },
  });
  const body = await res.text();
  assert.equal(res.status, 503, body);
  assert.match(body, expected);
  assert.equal(stack.fake.requests.filter((q) => q.path.includes("generateAccessToken")).length, 0);
}

Deno.test("with-prod and the proxy refuse a gate socket with mode 0666", async () => {
  await using stack = await startStack({ proxy: false, gateToml: QUEUE_PROD_TOML });
  Deno.chmodSync(stack.socketPath, 0o666);
  await assertBothRefuse(
    stack,
    /refusing gate socket .*gate\.sock: mode 0666 lets other users reach it; it must be 0600 .*/,
  );
});

Deno.test("with-prod and the proxy refuse a gate socket planted by another uid", {
  ignore: !IS_ROOT,
}, async () => {
  await using stack = await startStack({ proxy: false, gateToml: QUEUE_PROD_TOML });
  // As root we can give the socket to any uid (65534 = nobody): exactly what
  // another user's own `ssh -R` or listener would look like.
  Deno.chownSync(stack.socketPath, 65534, 65534);
  await assertBothRefuse(
    stack,
    /refusing gate socket .*gate\.sock: it belongs to uid 65534, not to you \(uid 0\), so another user may have planted it; .*/,
  );
});

Deno.test("a same-uid relay planted in a writable socket directory gets no with-prod request", async () => {
  await using stack = await startStack({ proxy: false, gateToml: QUEUE_PROD_TOML });
  const dir = stack.socketPath.replace(/\/[^/]+$/, "");
  // The attack of issue 11: move the gate's socket aside, listen in its place
  // with the same owner and mode, relay (and read) everything.
  Deno.renameSync(stack.socketPath, `${dir}/real.sock`);
  const relay = Deno.listen({ transport: "unix", path: stack.socketPath });
  Deno.chmodSync(stack.socketPath, 0o600);
  let connections = 0;
  const accepting = (async () => {
    for await (const conn of relay) {
      connections++;
      const upstream = await Deno.connect({ transport: "unix", path: `${dir}/real.sock` });
      conn.readable.pipeTo(upstream.writable).catch(() => {});
      upstream.readable.pipeTo(conn.writable).catch(() => {});
    }
  })();
  try {
    const r = await run("with-prod", ["--", "true"], { env: wrapEnv(stack, wrapConfig(stack)) });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /its directory is not a read-only mount/);
    assert.equal(connections, 0, "with-prod never connected to the planted socket");
  } finally {
    relay.close();
    await accepting.catch(() => {});
  }
});

/** Swaps two directories (renameat2 RENAME_EXCHANGE) every 0.5 ms until killed. */
const SWAPPER = `import ctypes, sys, time
libc = ctypes.CDLL("libc.so.6", use_errno=True)
a, b = sys.argv[1].encode(), sys.argv[2].encode()
while True:
    libc.renameat2(-100, a, -100, b, 2)
    time.sleep(0.0005)
`;

Deno.test(
  "with-prod: root swapping the read-only mount's parent never reaches a relay (pinned directory)",
  {
    ignore: !HAVE_UNSHARE || !IS_ROOT,
  },
  async () => {
    await using stack = await startStack({ proxy: false, gateToml: QUEUE_PROD_TOML });
    const ct = Deno.makeTempDirSync({ prefix: "gcp-gate-swap-" });
    Deno.mkdirSync(`${ct}/run/gcp-gate`, { recursive: true });
    Deno.mkdirSync(`${ct}/fake/gcp-gate`, { recursive: true, mode: 0o700 });
    // The relay: the mount point's parent is swapped for a directory holding it.
    const relayPath = `${ct}/fake/gcp-gate/gate.sock`;
    const relay = Deno.listen({ transport: "unix", path: relayPath });
    Deno.chmodSync(relayPath, 0o600);
    let reached = 0;
    const accepting = (async () => {
      for await (const c of relay) (reached++, c.close());
    })().catch(() => {});
    const cfg = `${stack.home}/swap.toml`;
    Deno.writeTextFileSync(cfg, `socket_path = "${ct}/run/gcp-gate/gate.sock"\n`);
    Deno.writeTextFileSync(`${ct}/swap.py`, SWAPPER);
    const RUNS = 8;
    const script = [
      'mount --bind "$REAL" "$CT/run/gcp-gate" && mount -o remount,bind,ro "$CT/run/gcp-gate" || exit 97',
      'python3 "$CT/swap.py" "$CT/run" "$CT/fake" & swapper=$!',
      `for i in $(seq ${RUNS}); do "$BIN/with-prod" -- true; echo "run $i exit $?"; done`,
      'kill "$swapper"',
    ].join("\n");
    const env = {
      ...wrapEnv(stack, cfg),
      REAL: stack.socketPath.replace(/\/[^/]+$/, ""),
      CT: ct,
      BIN,
    };
    try {
      await using shell = await start("with-prod", ["-m", "sh", "-c", script], {
        command: "unshare",
        env,
      });
      // Approve whatever reaches the real gate until the runs are over.
      let done = false;
      const status = shell.status.finally(() => (done = true));
      while (!done) await approveNext(stack, 1500).catch(() => {});
      assert.notEqual((await status).code, 97, shell.output());
      const exits = [...shell.output().matchAll(/^run \d+ exit (\d+)$/gm)].map((m) => Number(m[1]));
      assert.equal(exits.length, RUNS, shell.output());
      assert.equal(reached, 0, `the relay was reached ${reached} times\n${shell.output()}`);
      // A run whose pin landed on the swapped-in directory is refused (it is writable), never relayed.
      assert.ok(
        exits.every((code) => code === 0 || code === 1),
        shell.output(),
      );
    } finally {
      relay.close();
      await accepting;
      Deno.removeSync(ct, { recursive: true });
    }
  },
);
