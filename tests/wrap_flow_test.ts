/**
 * with-prod end to end: the built dist/bin/with-prod against a real gate
 * (approval through its queue, decided with `gcp-gate approve <id> --yes`)
 * and the fake Google. Exit codes, signals, environment, the PID
 * restriction, teardown and nesting.
 */
import assert from "node:assert/strict";
import {
  approveNext,
  assertNoSecrets,
  baseEnv,
  BIN,
  hasCommand,
  PROD_SA,
  QUEUE_PROD_TOML,
  run,
  type RunningProcess,
  type Stack,
  start,
  startStack,
} from "./_utils.ts";
import { readAudit } from "./_audit.ts";
import { startApproved, wrapEnv } from "./_wrap.ts";

const TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token";

interface AuditLine {
  endpoint: string;
  result: string;
  session?: string;
  caller_command?: string | null;
  refusal?: string;
}

/** Waits until every granted session has a matching "revoked" line (the log is flushed async). */
async function assertAllRevoked(stack: Stack, sessions: number): Promise<void> {
  const deadline = Date.now() + 5000;
  let granted: AuditLine[] = [];
  let revoked: AuditLine[] = [];
  while (Date.now() < deadline) {
    const lines = readAudit<AuditLine>(stack).filter((l) => l.endpoint === "/session");
    granted = lines.filter((l) => l.result === "granted");
    revoked = lines.filter((l) => l.result === "revoked");
    if (granted.length === sessions && revoked.length === sessions) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(granted.length, sessions, `granted sessions in the audit:\n${stack.logs()}`);
  assert.deepEqual(
    revoked.map((l) => l.session).sort(),
    granted.map((l) => l.session).sort(),
    "every granted session is revoked",
  );
}

/** Starts with-prod and approves its request. */
async function finish(p: RunningProcess, stack: Stack): Promise<number> {
  const s = await p.status;
  assertNoSecrets(p.output(), stack.fake, "with-prod output");
  return s.code;
}

Deno.test("with-prod: exit codes 0, 7, 137 and teardown after each", async () => {
  await using stack = await startStack({ gateToml: QUEUE_PROD_TOML, proxy: false });
  const cases: [string[], number][] = [
    [["true"], 0],
    [["sh", "-c", "exit 7"], 7],
    [["sh", "-c", "kill -KILL $$"], 137],
  ];
  for (const [cmd, want] of cases) {
    await using p = await startApproved(stack, [
      "--",
      "sh",
      "-c",
      'echo "dir=$CLOUDSDK_CONFIG"; exec "$@"',
      "sh",
      ...cmd,
    ]);
    const code = await finish(p, stack);
    assert.equal(code, want, `${cmd.join(" ")}: ${p.output()}`);
    const dir = /dir=(\S+)/.exec(p.output())?.[1] ?? "";
    assert.ok(dir.startsWith("/"), p.output());
    assert.throws(() => Deno.statSync(dir), Deno.errors.NotFound, "config dir removed");
  }
  await assertAllRevoked(stack, cases.length);
});

Deno.test("with-prod: an unknown command exits 127 without asking for approval", async () => {
  await using stack = await startStack({ gateToml: QUEUE_PROD_TOML, proxy: false });
  const r = await run("with-prod", ["--", "no-such-command-xyz", "arg"], { env: wrapEnv(stack) });
  assert.equal(r.code, 127);
  assert.match(r.stderr, /no-such-command-xyz: command not found/);
  const pending = await run("gcp-gate", ["pending", "--config", stack.configPath], {
    env: baseEnv(stack.home),
  });
  assert.doesNotMatch(pending.stdout, /\(waiting/);
  assert.equal(readAudit<AuditLine>(stack).filter((l) => l.endpoint === "/session").length, 0);
});

Deno.test("with-prod: a hint after 10 s of waiting; Ctrl-C then cancels, exits 130, drops the entry", async () => {
  await using stack = await startStack({ gateToml: QUEUE_PROD_TOML, proxy: false });
  const began = Date.now();
  await using p = await start("with-prod", ["--", "true"], { env: wrapEnv(stack) });
  const pending = async (): Promise<string> =>
    (await run("gcp-gate", ["pending", "--config", stack.configPath], {
      env: baseEnv(stack.home),
    })).stdout;
  // Wait until the request is queued at the gate.
  const deadline = Date.now() + 15_000;
  while (!/\(waiting/.test(await pending())) {
    if (Date.now() > deadline) throw new Error(`never queued:\n${p.output()}\n${stack.logs()}`);
    await new Promise((r) => setTimeout(r, 150));
  }
  assert.doesNotMatch(p.output(), /approve on the host/, "hint before 10 s");
  await p.waitFor(/approve on the host: dialog, terminal, or `gcp-gate approve <id>`/, 20_000);
  assert.ok(Date.now() - began >= 9_500, "the hint came before 10 s of waiting");
  p.kill("SIGINT");
  assert.equal((await p.status).code, 130, p.output());
  assert.equal(readAudit<AuditLine>(stack).filter((l) => l.result === "granted").length, 0);
  // The gate saw the client go: nothing is left for a human to approve by mistake.
  const gone = Date.now() + 5000;
  while (/\(waiting/.test(await pending()) && Date.now() < gone) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.doesNotMatch(await pending(), /\(waiting/, "the queue entry outlived its client");
});

Deno.test("with-prod: SIGTERM is forwarded (143), a trapping child decides its code", async () => {
  await using stack = await startStack({ gateToml: QUEUE_PROD_TOML, proxy: false });
  {
    await using p = await startApproved(stack, ["--", "sleep", "30"]);
    await p.waitFor(/approved/);
    await new Promise((r) => setTimeout(r, 300));
    p.kill("SIGTERM");
    assert.equal(await finish(p, stack), 143, p.output());
  }
  {
    await using p = await startApproved(stack, [
      "--",
      "sh",
      "-c",
      'trap "echo trapped-term; exit 3" TERM; echo child-ready; while :; do sleep 0.1; done',
    ]);
    await p.waitFor(/child-ready/);
    p.kill("SIGTERM");
    assert.equal(await finish(p, stack), 3, p.output());
    assert.match(p.output(), /trapped-term/);
  }
  {
    // SIGINT (not from a terminal) is forwarded too: 130.
    await using p = await startApproved(stack, [
      "--",
      "sh",
      "-c",
      "echo child-ready; exec sleep 30",
    ]);
    await p.waitFor(/child-ready/);
    p.kill("SIGINT");
    assert.equal(await finish(p, stack), 130, p.output());
  }
  await assertAllRevoked(stack, 3);
});

Deno.test("with-prod: a second signal SIGKILLs the command and the children it started", async () => {
  await using stack = await startStack({ gateToml: QUEUE_PROD_TOML, proxy: false });
  // Both ignore SIGTERM (an ignored signal stays ignored in children): only SIGKILL ends them.
  await using p = await startApproved(stack, [
    "--",
    "sh",
    "-c",
    // The grandchild leaves our pipes so that only the kill, not its own end, can stop it.
    'trap "" TERM; sleep 300 </dev/null >/dev/null 2>&1 & echo "dir=$CLOUDSDK_CONFIG grandchild=$!"; wait',
  ]);
  const [, dir, pid] = await p.waitFor(/dir=(\S+) grandchild=(\d+)/);
  const grandchild = Number(pid);
  try {
    p.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 300));
    p.kill("SIGTERM");
    assert.equal(await finish(p, stack), 137, p.output());
    const deadline = Date.now() + 3000;
    while (alive(grandchild) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(!alive(grandchild), "the command's child outlived with-prod");
    assert.throws(() => Deno.statSync(dir!), Deno.errors.NotFound, "config dir removed");
    await assertAllRevoked(stack, 1);
  } finally {
    try {
      Deno.kill(grandchild, "SIGKILL");
    } catch { /* gone, as it should be */ }
  }
});

function alive(pid: number): boolean {
  try {
    // A zombie has exited; only its (new) parent has not collected it yet.
    return !Deno.readTextFileSync(`/proc/${pid}/status`).includes("State:\tZ");
  } catch {
    return false;
  }
}

Deno.test("with-prod: the child's environment is scrubbed and points at the private config", async () => {
  await using stack = await startStack({ gateToml: QUEUE_PROD_TOML, proxy: false });
  const hostile = {
    GOOGLE_APPLICATION_CREDENTIALS: "/leak/sa.json",
    CLOUDSDK_AUTH_ACCESS_TOKEN: "leak-token",
    CLOUDSDK_AUTH_ACCESS_TOKEN_FILE: "/leak/token",
    CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE: "/leak/cred.json",
    CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT: "leak@x.iam.gserviceaccount.com",
    GOOGLE_OAUTH_ACCESS_TOKEN: "leak-token",
    CPL_GS_BEARER: "leak-token",
    GOOGLE_API_KEY: "leak-key",
    CLOUDSDK_CORE_ACCOUNT: "leak@example.com",
    CLOUDSDK_CONFIG: "/leak/gcloud",
    GCE_METADATA_HOST: "leak:1",
    KEEP_ME: "kept",
  };
  const script = [
    "env",
    'echo "modes: $(stat -c %a "$CLOUDSDK_CONFIG")"',
    'echo "auth lines: $(grep -c -e "^\\[auth\\]" -e access_token "$CLOUDSDK_CONFIG/configurations/config_default")"',
    'echo "account: $(sed -n "s/^account = //p" "$CLOUDSDK_CONFIG/configurations/config_default")"',
  ].join("; ");
  await using p = await startApproved(stack, [
    "--project",
    "demo-project",
    "-e",
    "EXTRA=${HOME}/x",
    "-e",
    "DEF=${NOPE:-fallback}",
    "--",
    "sh",
    "-c",
    script,
  ], wrapEnv(stack, hostile));
  assert.equal(await finish(p, stack), 0, p.output());
  const out = p.stdout();
  const env = new Map(
    out.split("\n").filter((l) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(l)).map((l) => {
      const i = l.indexOf("=");
      return [l.slice(0, i), l.slice(i + 1)] as [string, string];
    }),
  );
  for (const k of Object.keys(hostile)) {
    if (k === "KEEP_ME") continue;
    assert.ok(!(env.get(k) ?? "").includes("leak"), `${k} leaked: ${env.get(k)}`);
  }
  assert.equal(env.get("KEEP_ME"), "kept");
  const proxy = env.get("GCE_METADATA_HOST") ?? "";
  assert.match(proxy, /^127\.0\.0\.1:\d+$/);
  assert.equal(env.get("GCE_METADATA_IP"), proxy);
  assert.equal(env.get("GCE_METADATA_ROOT"), proxy);
  for (const k of ["CLOUDSDK_CORE_PROJECT", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"]) {
    assert.equal(env.get(k), "demo-project", k);
  }
  assert.equal(env.get("GOOGLE_CLOUD_QUOTA_PROJECT"), "demo-project");
  // gcloud must name the account the prod tokens belong to, not the engineer.
  assert.equal(env.get("CLOUDSDK_CORE_ACCOUNT"), PROD_SA);
  assert.ok(env.get("GCP_GATE_WITH_PROD"), "nesting marker");
  assert.equal(env.get("EXTRA"), `${stack.home}/x`);
  assert.equal(env.get("DEF"), "fallback");
  assert.match(out, /^modes: 700$/m);
  // No credential in the private config: gcloud asks the PID-restricted proxy.
  assert.match(out, /^auth lines: 0$/m);
  assert.equal(/^account: (.*)$/m.exec(out)?.[1], PROD_SA);
  // No token value anywhere in the environment or output.
  assertNoSecrets(out, stack.fake, "child environment");
  await assertAllRevoked(stack, 1);
});

Deno.test("with-prod: only the wrapped process tree may use the temporary proxy", async () => {
  await using stack = await startStack({ gateToml: QUEUE_PROD_TOML, proxy: false });
  const workDir = Deno.makeTempDirSync();
  const done = `${workDir}/done`;
  const curl = `curl -s -o /dev/null -w "%{http_code}" -H "Metadata-Flavor: Google"`;
  const script = [
    // A grandchild (a subshell's curl) asks: allowed.
    `echo "inside=$( (${curl} "http://$GCE_METADATA_HOST${TOKEN_PATH}") )"`,
    'echo "proxy=$GCE_METADATA_HOST"',
    `while [ ! -e "${done}" ]; do sleep 0.1; done`,
  ].join("; ");
  await using p = await startApproved(stack, ["--", "sh", "-c", script]);
  const proxy = (await p.waitFor(/proxy=(127\.0\.0\.1:\d+)/))[1]!;
  assert.match(p.output(), /inside=200/);
  // A sibling started outside with-prod: refused, and audited.
  const outside = await run("curl", [
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    "-H",
    "Metadata-Flavor: Google",
    `http://${proxy}${TOKEN_PATH}`,
  ], { command: "curl" });
  assert.equal(outside.stdout, "403");
  await p.waitFor(/refused a connection to the prod metadata proxy/);
  // The refusal is also in the host's audit log, against the session.
  let refused: AuditLine | undefined;
  for (let i = 0; i < 50 && !refused; i++) {
    refused = readAudit<AuditLine>(stack).find((l) => l.result === "refused");
    if (!refused) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(refused, `no "refused" line in the gate's audit log:\n${stack.logs()}`);
  assert.equal(refused.endpoint, "/session/refusal");
  assert.equal(refused.caller_command, "curl");
  const granted = readAudit<AuditLine>(stack).find((l) =>
    l.endpoint === "/session" && l.result === "granted"
  );
  assert.equal(refused.session, granted?.session);
  Deno.writeTextFileSync(done, "");
  assert.equal(await finish(p, stack), 0, p.output());
  Deno.removeSync(workDir, { recursive: true });
});

const PY = "/usr/bin/python3";
// Connects from a fixed source port, asks for a token, prints the status, and
// closes with RST (SO_LINGER 0) so the port is free again at once.
const PY_FIXED_PORT = `
import socket, struct, sys
port, target = int(sys.argv[1]), sys.argv[2]
host, tport = target.split(":")
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.connect((host, int(tport)))
s.sendall(("GET ${TOKEN_PATH} HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nMetadata-Flavor: Google\\r\\n\\r\\n").encode())
print("status=" + s.recv(64).decode().split(" ")[1], flush=True)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
`;

Deno.test({
  name: "with-prod: a process reusing the child's source port is refused",
  ignore: !hasCommand(PY),
  fn: async () => {
    await using stack = await startStack({ gateToml: QUEUE_PROD_TOML, proxy: false });
    const dir = Deno.makeTempDirSync();
    try {
      Deno.writeTextFileSync(`${dir}/c.py`, PY_FIXED_PORT);
      const done = `${dir}/done`;
      // A free port to reuse: bind :0, read it, release it.
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (l.addr as Deno.NetAddr).port;
      l.close();
      const script = [
        `${PY} ${dir}/c.py ${port} "$GCE_METADATA_HOST"`,
        'echo "proxy=$GCE_METADATA_HOST"',
        `while [ ! -e "${done}" ]; do sleep 0.1; done`,
      ].join("; ");
      await using p = await startApproved(stack, ["--", "sh", "-c", script]);
      const proxy = (await p.waitFor(/proxy=(127\.0\.0\.1:\d+)/))[1]!;
      assert.match(p.output(), /status=200/);
      const outside = await run(PY, [`${dir}/c.py`, String(port), proxy], { command: PY });
      assert.match(outside.stdout, /status=403/, outside.stderr);
      Deno.writeTextFileSync(done, "");
      assert.equal(await finish(p, stack), 0, p.output());
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test("with-prod: nested with-prod reuses the session; another project asks anew", async () => {
  await using stack = await startStack({ gateToml: QUEUE_PROD_TOML, proxy: false });
  const curl =
    `curl -s -o /dev/null -w "%{http_code}" -H "Metadata-Flavor: Google" "http://$GCE_METADATA_HOST${TOKEN_PATH}"`;
  // Same project: one approval only (a second one would leave the inner waiting).
  {
    await using p = await startApproved(stack, [
      "--",
      "with-prod",
      "--",
      "sh",
      "-c",
      `echo "nested=$(${curl})"`,
    ], wrapEnv(stack, { PATH: `${BIN}:${Deno.env.get("PATH")}` }));
    assert.equal(await finish(p, stack), 0, p.output());
    assert.match(p.output(), /nested=200/);
  }
  await assertAllRevoked(stack, 1);
  // Another project: the inner with-prod asks for its own approval.
  {
    await using p = await startApproved(stack, [
      "--",
      "with-prod",
      "--project",
      "other-project",
      "--",
      "sh",
      "-c",
      `echo "inner=$(${curl})"`,
    ], wrapEnv(stack, { PATH: `${BIN}:${Deno.env.get("PATH")}` }));
    await approveNext(stack);
    assert.equal(await finish(p, stack), 0, p.output());
    assert.match(p.output(), /inner=200/);
  }
  await assertAllRevoked(stack, 3);
});
