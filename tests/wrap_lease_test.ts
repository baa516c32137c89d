/**
 * with-prod's session lease and prod token lifetimes, end to end through the
 * built launchers: a session lives only as long as the with-prod that opened
 * it; cancelling with-prod withdraws its pending request; prod tokens are
 * short and stay under Google's default 3600 s cap (enforced by the fake).
 */
import assert from "node:assert/strict";
import { isGateError } from "../shared/errors.ts";
import { createGateClient } from "../shared/gate_client.ts";
import {
  assertNoSecrets,
  baseEnv,
  PROD_SA,
  QUEUE_PROD_TOML,
  run,
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
  reason?: string;
  ttl_seconds?: number;
  level?: string;
}

async function waitUntil<T>(
  what: string,
  f: () => T | undefined | Promise<T | undefined>,
  ms = 5000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function pending(stack: Stack): Promise<string> {
  return (await run("gcp-gate", ["pending", "--config", stack.configPath], {
    env: baseEnv(stack.home),
  })).stdout;
}

Deno.test("with-prod: prod_service_account tokens work under Google's 3600 s cap and live ≤ 600 s", async () => {
  await using stack = await startStack({ gateToml: QUEUE_PROD_TOML, proxy: false });
  // Only the lifetime leaves the command: the token itself is never printed.
  const script =
    `curl -s -H "Metadata-Flavor: Google" "http://$GCE_METADATA_HOST${TOKEN_PATH}" | grep -o '"expires_in":[0-9]*'`;
  await using p = await startApproved(stack, ["--", "sh", "-c", script]);
  assert.equal((await p.status).code, 0, p.output());
  assertNoSecrets(p.output(), stack.fake, "with-prod output");
  const expiresIn = Number(/"expires_in":(\d+)/.exec(p.stdout())?.[1]);
  assert.ok(expiresIn > 0 && expiresIn <= 600, `expires_in ${expiresIn}:\n${p.output()}`);
  const mints = stack.fake.requests.filter((r) =>
    r.path.includes(encodeURIComponent(PROD_SA)) && r.path.endsWith(":generateAccessToken")
  );
  assert.ok(mints.length >= 1, stack.logs());
  for (const m of mints) {
    const lifetime = Number(/^(\d+)s$/.exec(JSON.parse(m.body).lifetime)?.[1]);
    assert.ok(lifetime > 0 && lifetime <= 600, `asked lifetime ${lifetime}s`);
  }
  const granted = readAudit<AuditLine>(stack).filter((l) =>
    l.endpoint === "/token" && l.level === "prod"
  );
  assert.ok(granted.every((l) => (l.ttl_seconds ?? 0) <= 600), JSON.stringify(granted));
});

/** Polls the audit log for the line that ends session `prefix`. */
function revokedLine(stack: Stack, prefix: string): Promise<AuditLine> {
  return waitUntil(
    `the revocation of session ${prefix} in the audit log`,
    () =>
      readAudit<AuditLine>(stack).find((l) =>
        l.endpoint === "/session" && l.result === "revoked" && l.session === prefix
      ),
  );
}

function grantedSessions(stack: Stack): string[] {
  return readAudit<AuditLine>(stack).filter((l) =>
    l.endpoint === "/session" && l.result === "granted"
  )
    .map((l) => l.session!);
}

function killPid(pid: number): void {
  try {
    Deno.kill(pid, "SIGKILL");
  } catch { /* already gone */ }
}

Deno.test("with-prod: a killed with-prod's session is revoked at once, audited as lease lost", async () => {
  await using stack = await startStack({ gateToml: QUEUE_PROD_TOML, proxy: false });
  await using p = await startApproved(stack, ["--", "sh", "-c", "echo child=$$; exec sleep 30"]);
  const child = Number((await p.waitFor(/child=(\d+)/))[1]);
  try {
    const [prefix] = await waitUntil("the granted session", () => {
      const g = grantedSessions(stack);
      return g.length === 1 ? g : undefined;
    });
    const killedAt = Date.now();
    p.kill("SIGKILL"); // no teardown, no DELETE: only the lease can end the session
    const line = await revokedLine(stack, prefix!);
    assert.equal(line.reason, "lease lost", JSON.stringify(line));
    assert.ok(Date.now() - killedAt < 5000, "revoked within the keep-alive period");
    assert.ok(!stack.logs().includes("could not revoke"), stack.logs());
  } finally {
    killPid(child);
  }
});

Deno.test("gcp-gate: POST /session without a lease (protocol-1 clients) is refused; nothing is queued", async () => {
  await using stack = await startStack({ gateToml: QUEUE_PROD_TOML, proxy: false });
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: stack.socketPath } });
  try {
    const res = await fetch("http://gate.invalid/session", {
      client,
      method: "POST",
      headers: { "x-gcp-gate-protocol": "1", "content-type": "application/json" },
      body: JSON.stringify({ command: ["true"] }),
    });
    const body = await res.json() as { code: string; error: string };
    assert.equal(res.status, 400);
    assert.equal(body.code, "protocol_mismatch");
    assert.match(body.error, /x-gcp-gate-lease/);
  } finally {
    client.close();
  }
  assert.doesNotMatch(await pending(stack), /\(waiting/);
});

/** An argument long enough that the request body spans several reads at the gate. */
const LONG_ARG = `--filter=${"labels.team=payments AND ".repeat(20)}end`;

Deno.test("with-prod: Ctrl-C or kill while queued with a long command withdraws the queue entry", async () => {
  assert.ok(LONG_ARG.length > 300);
  for (const signal of ["SIGKILL", "SIGINT"] as const) {
    // A fresh gate each: a withdrawn request starts a short cooldown.
    await using stack = await startStack({ gateToml: QUEUE_PROD_TOML, proxy: false });
    await using p = await start("with-prod", ["--", "sh", "-c", "exit 0", "sh", LONG_ARG], {
      env: wrapEnv(stack),
    });
    await waitUntil(
      "the queued request",
      async () => /\(waiting/.test(await pending(stack)) ? true : undefined,
      15_000,
    ).catch((err) => {
      throw new Error(`${err.message} (${signal}):\n${p.output()}\n${stack.logs()}`);
    });
    p.kill(signal);
    const code = (await p.status).code;
    assert.equal(code, signal === "SIGINT" ? 130 : 137, p.output());
    // The entry must go now, not at approval_timeout_seconds (120 s): nobody
    // may approve a request whose client is gone.
    await waitUntil(
      `the queue entry to go after ${signal}`,
      async () => /\(waiting/.test(await pending(stack)) ? undefined : true,
      5000,
    );
    assert.equal(grantedSessions(stack).length, 0);
  }
});

/**
 * A same-uid man in the middle, as a container process could run it when
 * the socket directory is writable: moves gate.sock aside, listens in its
 * place, relays every connection to the real socket, captures session ids
 * and answers `DELETE /session` itself so the gate never hears it.
 */
function startRelay(socketPath: string) {
  const real = `${socketPath}.real`;
  Deno.renameSync(socketPath, real);
  const listener = Deno.listen({ transport: "unix", path: socketPath });
  // A careful relay looks like the gate's own socket (with-prod checks owner and mode).
  Deno.chmodSync(socketPath, 0o600);
  const captured = new Set<string>();
  const conns = new Set<Deno.Conn>();
  let swallowed = 0;
  const ID = /session(?:_id":"|=)([A-Za-z0-9_-]{43})/g;
  const decoder = new TextDecoder();

  async function pipe(from: Deno.Conn, to: Deno.Conn, first?: Uint8Array): Promise<void> {
    let tail = "";
    const scan = (b: Uint8Array): void => {
      tail = (tail + decoder.decode(b)).slice(-4096);
      for (const m of tail.matchAll(ID)) captured.add(m[1]!);
    };
    try {
      if (first) {
        scan(first);
        await to.write(first);
      }
      const buf = new Uint8Array(16 * 1024);
      for (;;) {
        const k = await from.read(buf);
        if (k === null) break;
        scan(buf.subarray(0, k));
        for (let o = 0; o < k;) o += await to.write(buf.subarray(o, k));
      }
    } catch {
      /* either side went away */
    } finally {
      // A plain relay: when one side closes, so does the other.
      for (const c of [from, to]) {
        try {
          c.close();
        } catch { /* closed */ }
        conns.delete(c);
      }
    }
  }

  async function handle(down: Deno.Conn): Promise<void> {
    conns.add(down);
    const buf = new Uint8Array(64 * 1024);
    let n = 0;
    while (n < buf.length && !decoder.decode(buf.subarray(0, n)).includes("\r\n\r\n")) {
      const k = await down.read(buf.subarray(n)).catch(() => null);
      if (k === null) break;
      n += k;
    }
    const head = decoder.decode(buf.subarray(0, n));
    if (head.startsWith("DELETE /session")) {
      swallowed++;
      const body = '{"status":"revoked"}';
      await down.write(new TextEncoder().encode(
        `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      )).catch(() => {});
      down.close();
      conns.delete(down);
      return;
    }
    const up = await Deno.connect({ transport: "unix", path: real });
    conns.add(up);
    await Promise.all([pipe(down, up, buf.slice(0, n)), pipe(up, down)]);
  }

  const accepting = (async () => {
    try {
      for await (const c of listener) void handle(c).catch(() => {});
    } catch { /* closed */ }
  })();
  return {
    real,
    captured,
    swallowed: () => swallowed,
    async close(): Promise<void> {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await accepting;
    },
  };
}

Deno.test("with-prod: a relay that swallows DELETE /session cannot keep the session (lease lost)", async () => {
  await using stack = await startStack({ gateToml: QUEUE_PROD_TOML, proxy: false });
  const relay = startRelay(stack.socketPath);
  try {
    const script =
      `curl -s -H "Metadata-Flavor: Google" "http://$GCE_METADATA_HOST${TOKEN_PATH}" | grep -c access_token`;
    await using p = await startApproved(stack, ["--", "sh", "-c", script]);
    assert.equal((await p.status).code, 0, p.output());
    assert.match(p.stdout(), /^1$/m, "the command got its token through the relay");
    assert.equal(relay.swallowed(), 1, `with-prod's DELETE was swallowed:\n${p.output()}`);
    const [id] = [...relay.captured];
    assert.ok(id, "the relay captured the session id");

    const line = await revokedLine(stack, id.slice(0, 8));
    assert.equal(line.reason, "lease lost", "revoked because the lease ended, not by DELETE");
    // The captured id is worthless now, straight at the real socket.
    const gate = createGateClient({ socketPath: relay.real });
    try {
      const err = await gate.token({ session: id }).catch((e) => e);
      assert.ok(isGateError(err, "session_not_found"), String(err));
    } finally {
      gate.close();
    }
  } finally {
    await relay.close();
  }
});

Deno.test("with-prod: when the gate stops, with-prod says the session is lost and serves no more tokens", async () => {
  await using stack = await startStack({ gateToml: QUEUE_PROD_TOML, proxy: false });
  const dir = Deno.makeTempDirSync();
  try {
    const go = `${dir}/go`;
    const curl =
      `curl -s -o /dev/null -w "%{http_code}" -H "Metadata-Flavor: Google" "http://$GCE_METADATA_HOST${TOKEN_PATH}"`;
    const script = [
      `echo "before=$(${curl})"`,
      `while [ ! -e "${go}" ]; do sleep 0.05; done`,
      `echo "after=$(${curl})"`,
    ].join("; ");
    await using p = await startApproved(stack, ["--", "sh", "-c", script]);
    await p.waitFor(/before=200/);
    const stoppedAt = Date.now();
    stack.gate.kill("SIGTERM");
    // The "ended" event may not get out before the gate closes its connections: either way
    // with-prod must notice.
    await p.waitFor(/prod session lost: the gate (ended the session|closed the connection)/);
    assert.equal((await stack.gate.status).code, 0, stack.gate.output());
    assert.ok(Date.now() - stoppedAt < 5000, "the gate stopped without waiting for the lease");
    Deno.writeTextFileSync(go, "");
    await p.waitFor(/after=\d+/);
    assert.match(p.output(), /after=000/, "the proxy is stopped: not even a cached token");
    const line = readAudit<AuditLine>(stack).find((l) => l.result === "revoked");
    assert.equal(line?.reason, "gate stopping", JSON.stringify(readAudit<AuditLine>(stack)));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("with-prod: refuses to ask a gate that predates session leases (no approval spent)", async () => {
  const dir = Deno.makeTempDirSync();
  const socketPath = `${dir}/gate.sock`;
  const seen: string[] = [];
  // An older gate: same protocol number, no session_lease in /health.
  const ac = new AbortController();
  const server = Deno.serve({ path: socketPath, signal: ac.signal, onListen: () => {} }, (req) => {
    seen.push(`${req.method} ${new URL(req.url).pathname}`);
    return Response.json({ status: "ok", uptime_seconds: 1, version: "0.9.0", protocol: 1 });
  });
  try {
    Deno.chmodSync(socketPath, 0o600);
    Deno.writeTextFileSync(
      `${dir}/config.toml`,
      `socket_path = "${socketPath}"\nallow_writable_socket_dir = true\n`,
    );
    const r = await run("with-prod", ["--", "true"], {
      env: baseEnv(dir, { GCP_GATE_CONFIG: `${dir}/config.toml` }),
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /older than this with-prod .*update gcp-gate on the host/);
    assert.doesNotMatch(r.stderr, /approval code/, "no code printed: nothing was asked");
    assert.deepEqual(seen, ["GET /health"]);
  } finally {
    ac.abort();
    await server.finished;
    Deno.removeSync(dir, { recursive: true });
  }
});
