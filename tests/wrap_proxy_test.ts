/**
 * with-prod's PID-restricted proxy against hostile local processes, through
 * the built launchers with a real gate: it is the process's only listener
 * (no second socket to connect to around the check), another uid's flood is
 * refused at once and reported a bounded number of times, and connections
 * that close before their check are not audited as refusals.
 */
import assert from "node:assert/strict";
import {
  baseEnv,
  hasCommand,
  QUEUE_PROD_TOML,
  type RunningProcess,
  type Stack,
  start,
  startStack,
  tempDir,
} from "./_utils.ts";
import { startApproved } from "./_wrap.ts";

const TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token";
const PY = "/usr/bin/python3";
const CURL = `curl -s -o /dev/null -w "%{http_code}" -H "Metadata-Flavor: Google"`;

/** with-prod running `sh -c script`, approved. */
function startApprovedScript(stack: Stack, script: string): Promise<RunningProcess> {
  return startApproved(stack, ["--", "sh", "-c", script]);
}

function refusedAudits(stack: Stack): string[] {
  try {
    return Deno.readTextFileSync(`${stack.home}/.local/state/gcp-gate/audit.log`).split("\n")
      .filter((l) => l.includes('"result":"refused"'));
  } catch {
    return [];
  }
}

/** Socket inodes among `pid`'s open fds. */
function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  for (const e of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(Deno.readLinkSync(`/proc/${pid}/fd/${e.name}`));
      if (m) out.add(m[1]!);
    } catch { /* closed meanwhile */ }
  }
  return out;
}

/** Listening TCP ports and Unix sockets (listening or bound to a path) held by `pid`. */
function listeners(pid: number): { tcp: number[]; unix: string[] } {
  const mine = socketInodes(pid);
  const tcp: number[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of Deno.readTextFileSync(table).split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === "0A" && mine.has(f[9] ?? "")) tcp.push(parseInt(f[1]!.split(":")[1]!, 16));
    }
  }
  const unix: string[] = [];
  // Num RefCount Protocol Flags Type St Inode [Path]; Flags 00010000 = listening.
  for (const line of Deno.readTextFileSync("/proc/net/unix").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (!mine.has(f[6] ?? "")) continue;
    if ((parseInt(f[3] ?? "0", 16) & 0x10000) !== 0 || f[7]) unix.push(f[7] ?? `@inode ${f[6]}`);
  }
  return { tcp, unix };
}

Deno.test("with-prod: the restricted proxy's TCP port is its only listener", async () => {
  await using stack = await startStack({ gateToml: QUEUE_PROD_TOML, proxy: false });
  await using dir = tempDir();
  const done = `${dir.path}/done`;
  await using p = await startApprovedScript(
    stack,
    `echo "proxy=$GCE_METADATA_HOST"; echo "inside=$(${CURL} "http://$GCE_METADATA_HOST${TOKEN_PATH}")"; while [ ! -e "${done}" ]; do sleep 0.1; done`,
  );
  const port = Number((await p.waitFor(/proxy=127\.0\.0\.1:(\d+)/))[1]);
  await p.waitFor(/inside=200/);
  const found = listeners(p.pid);
  // The old design also listened on a path-named Unix socket (…/inner.sock)
  // that any same-uid process could connect to, bypassing the check.
  assert.deepEqual(found.unix, [], "no Unix listener and no path-bound socket");
  for (const path of found.unix) {
    await assert.rejects(Deno.connect({ transport: "unix", path }));
  }
  assert.deepEqual(found.tcp, [port], "one TCP listener: the proxy's port");
  Deno.writeTextFileSync(done, "");
  assert.equal((await p.status).code, 0, p.output());
});

const FLOOD_PY = `
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
codes = {}
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET ${TOKEN_PATH} HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nMetadata-Flavor: Google\\r\\n\\r\\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    code = data.split(b" ")[1].decode() if data else "none"
    codes[code] = codes.get(code, 0) + 1
    s.close()
print("flood=" + ",".join(f"{k}:{v}" for k, v in sorted(codes.items())), flush=True)
`;

const FLOOD = 300;

Deno.test({
  name:
    "with-prod: another uid's flood is refused at once, named by uid, reported a bounded number of times",
  // Needs root to run the flood as another uid (nobody, 65534).
  ignore: Deno.uid() !== 0 || !hasCommand("setpriv") || !hasCommand(PY) || !hasCommand("curl"),
  fn: async () => {
    await using stack = await startStack({ gateToml: QUEUE_PROD_TOML, proxy: false });
    await using dir = tempDir();
    Deno.chmodSync(dir.path, 0o755);
    Deno.writeTextFileSync(`${dir.path}/flood.py`, FLOOD_PY, { mode: 0o644 });
    const go = `${dir.path}/go`;
    const script = [
      'echo "proxy=$GCE_METADATA_HOST"',
      `while [ ! -e "${go}" ]; do sleep 0.05; done`,
      // The wrapped command keeps getting tokens while the flood runs.
      `for i in 1 2 3 4 5; do echo "inside=$(${CURL} "http://$GCE_METADATA_HOST${TOKEN_PATH}")"; done`,
      `while [ ! -e "${go}.done" ]; do sleep 0.05; done`,
    ].join("; ");
    const t0 = Date.now();
    await using p = await startApprovedScript(stack, script);
    const port = (await p.waitFor(/proxy=127\.0\.0\.1:(\d+)/))[1]!;
    const flood = await start("setpriv", [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      PY,
      `${dir.path}/flood.py`,
      port,
      String(FLOOD),
    ], { command: "setpriv", env: baseEnv(dir.path) });
    Deno.writeTextFileSync(go, "");
    const result = (await flood.waitFor(/flood=(\S+)/, 60_000))[1];
    await flood[Symbol.asyncDispose]();
    assert.equal(result, `403:${FLOOD}`, flood.output());
    Deno.writeTextFileSync(`${go}.done`, "");
    assert.equal((await p.status).code, 0, p.output());
    const inside = p.output().match(/inside=\d+/g) ?? [];
    assert.deepEqual(inside, Array(5).fill("inside=200"), p.output());
    // 5 at once, then one per 10 s: bounded by the run's length, not the flood's size.
    const bound = 5 + Math.ceil((Date.now() - t0) / 10_000);
    const lines = p.output().match(/refused a connection to the prod metadata proxy.*/g) ?? [];
    assert.ok(lines.length >= 1 && lines.length <= bound, `${lines.length} lines:\n${p.output()}`);
    assert.match(lines[0]!, /uid=65534/);
    assert.match(lines[0]!, /another user \(uid 65534\)/);
    // The gate got at most as many reports (it writes each to the audit log).
    const audits = refusedAudits(stack);
    assert.ok(audits.length <= bound, `${audits.length} audit lines`);
  },
});

const VANISH_PY = `
import socket, struct, sys
host, port = sys.argv[1].split(":")
for i in range(60):
    s = socket.create_connection((host, int(port)))
    if i % 2:
        # Reset instead of FIN: the socket is gone at once.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
print("vanished", flush=True)
`;

Deno.test({
  name: "with-prod: connections that close before their check are not audited as refusals",
  ignore: !hasCommand(PY) || !hasCommand("curl"),
  fn: async () => {
    await using stack = await startStack({ gateToml: QUEUE_PROD_TOML, proxy: false });
    await using dir = tempDir();
    Deno.writeTextFileSync(`${dir.path}/vanish.py`, VANISH_PY);
    // Like wrk's probe connection: opened by the wrapped command, closed at once.
    await using p = await startApprovedScript(
      stack,
      `${PY} ${dir.path}/vanish.py "$GCE_METADATA_HOST"; sleep 0.5; echo "after=$(${CURL} "http://$GCE_METADATA_HOST${TOKEN_PATH}")"`,
    );
    assert.equal((await p.status).code, 0, p.output());
    assert.match(p.output(), /vanished/);
    assert.match(p.output(), /after=200/);
    assert.doesNotMatch(p.output(), /refused a connection/);
    assert.deepEqual(refusedAudits(stack), []);
  },
});
