/**
 * The approval queue and the admin socket, end to end: a headless gate (no
 * display, no terminal) started from dist/bin, a real client asking for prod
 * access over the gate socket, and `gcp-gate pending|approve|deny` deciding
 * it over the admin socket. Rate limits are asserted with real timing.
 */
import assert from "node:assert/strict";
import { createGateClient } from "../shared/gate_client.ts";
import { isGateError } from "../shared/errors.ts";
import { PROTOCOL_HEADER, PROTOCOL_VERSION, type SessionResponse } from "../shared/protocol.ts";
import {
  assertNoSecrets,
  baseEnv,
  QUEUE_PROD_TOML,
  run,
  type Stack,
  start,
  startStack,
} from "./_utils.ts";

const SECRET = "hunter2-queue-secret";

function adminSocket(stack: Stack): string {
  return `${stack.home}/run/gcp-gate-admin/admin.sock`;
}

function gcpGate(stack: Stack, args: string[], input?: string): ReturnType<typeof run> {
  return run("gcp-gate", ["--config", stack.configPath, ...args], {
    env: baseEnv(stack.home),
    ...(input === undefined ? {} : { input }),
  });
}

/** Polls `gcp-gate pending` until a request is listed; returns its id and the listing. */
async function waitPending(stack: Stack): Promise<{ id: string; listing: string }> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const r = await gcpGate(stack, ["pending"]);
    assert.equal(r.code, 0, `pending failed: ${r.stderr}\n${stack.logs()}`);
    const m = /^([0-9a-f]{8})\s+\(waiting/m.exec(r.stdout);
    if (m) return { id: m[1]!, listing: r.stdout };
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`no pending request appeared; logs:\n${stack.logs()}`);
}

/** Asks for a prod session; settles with the response or the GateError. */
function askSession(
  stack: Stack,
  command: string[] = ["gcloud", "run", "deploy", "--password", SECRET],
): Promise<SessionResponse | Error> {
  const client = createGateClient({ socketPath: stack.socketPath, timeoutMs: 60_000 });
  // Only the answer matters here: the lease is let go at once (the session ends with it).
  return client.openSession({ command, reason: "hotfix INC-42" })
    .then((lease) => {
      lease.close();
      return lease.session;
    }, (e: Error) => e)
    .finally(() => client.close());
}

async function fetchUnix(socket: string, path: string, method = "GET"): Promise<Response> {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
  try {
    const res = await fetch(`http://gate.invalid${path}`, {
      method,
      client,
      headers: { [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) },
    });
    await res.body?.cancel();
    return res;
  } finally {
    client.close();
  }
}

Deno.test("queue: a headless gate waits; gcp-gate approve <id> (typing yes) opens the session", async () => {
  await using stack = await startStack({ proxy: false });
  const asked = askSession(stack);
  const { id, listing } = await waitPending(stack);
  // Every fact the human needs, and no secret.
  for (
    const want of ["PRODUCTION", "demo-project", "cloud-platform", "hotfix INC-42", "[REDACTED]"]
  ) {
    assert.ok(listing.includes(want), `pending listing lacks ${want}:\n${listing}`);
  }
  assert.match(
    listing,
    /1\s+gcloud\n.*2\s+run\n.*3\s+deploy\n.*4\s+--password\n.*5\s+\[REDACTED\]/s,
  );
  assert.ok(!listing.includes(SECRET), "the listing shows the caller's secret");

  // Anything but "yes" leaves the request waiting.
  const no = await gcpGate(stack, ["approve", id], "y\n");
  assert.equal(no.code, 1, no.stderr);
  assert.match(no.stderr, /not approved/);
  assert.equal((await waitPending(stack)).id, id);

  const yes = await gcpGate(stack, ["approve", id], "yes\n");
  assert.equal(yes.code, 0, `approve failed: ${yes.stderr}\n${stack.logs()}`);
  assert.match(yes.stdout, new RegExp(`approved prod request ${id}`));
  const res = await asked;
  assert.ok(!(res instanceof Error), `session refused: ${res}\n${stack.logs()}`);
  assert.match(res.session_id, /\S/);
  const after = await gcpGate(stack, ["pending"]);
  assert.match(after.stdout, /No prod request is waiting/);
  assertNoSecrets(stack.logs(), stack.fake, "gate logs");
  assert.ok(!stack.logs().includes(SECRET), "gate logs show the caller's secret");
});

Deno.test("queue: gcp-gate deny <id> → 403 denied; then a denial cooldown of real seconds → 429", async () => {
  await using stack = await startStack({ proxy: false, gateToml: "denial_cooldown_seconds = 2" });
  const asked = askSession(stack);
  const { id } = await waitPending(stack);
  const d = await gcpGate(stack, ["deny", id]);
  assert.equal(d.code, 0, d.stderr);
  const res = await asked;
  assert.ok(isGateError(res, "denied"), `expected denied, got ${res}`);
  assert.equal(res.status, 403);

  const cooled = await askSession(stack);
  assert.ok(isGateError(cooled, "rate_limited"), `expected rate_limited, got ${cooled}`);
  assert.equal(cooled.status, 429);
  assert.match(cooled.message, /denied.*retry in [12] s/);
  assert.ok((cooled.retryAfterSeconds ?? 0) >= 1);

  // After the cooldown, a new request is admitted (it waits in the queue again).
  await new Promise((r) => setTimeout(r, 2100));
  const again = askSession(stack);
  const next = await waitPending(stack);
  assert.notEqual(next.id, id);
  assert.equal((await gcpGate(stack, ["approve", "--yes", next.id])).code, 0);
  assert.ok(!((await again) instanceof Error));
});

Deno.test("queue: one pending approval at a time (second → 429), and expiry → 403", async () => {
  await using stack = await startStack({
    proxy: false,
    gateToml: "approval_timeout_seconds = 5\ndenial_cooldown_seconds = 0",
  });
  const started = Date.now();
  const first = askSession(stack);
  await waitPending(stack);
  const second = await askSession(stack, ["ls"]);
  assert.ok(isGateError(second, "rate_limited"), `expected rate_limited, got ${second}`);
  assert.match(second.message, /an approval is already pending/);
  assert.ok((second.retryAfterSeconds ?? 0) >= 1 && (second.retryAfterSeconds ?? 99) <= 5);
  const res = await first;
  assert.ok(isGateError(res, "denied"), `expected denied, got ${res}`);
  assert.match(res.message, /5 s/);
  assert.ok(Date.now() - started >= 4500, "the queue entry expired early");
  const audit = Deno.readTextFileSync(`${stack.home}/.local/state/gcp-gate/audit.log`);
  assert.match(audit, /rate_limited/);
});

Deno.test("queue: the gate socket has no admin endpoints and the admin socket no gate endpoints", async () => {
  await using stack = await startStack({ proxy: false });
  const admin = adminSocket(stack);
  // Separate directories: containers mount the gate socket's directory only.
  assert.notEqual(
    admin.slice(0, admin.lastIndexOf("/")),
    stack.socketPath.slice(0, stack.socketPath.lastIndexOf("/")),
  );
  assert.equal(Deno.statSync(admin).mode! & 0o777, 0o600);
  assert.equal(Deno.statSync(admin.slice(0, admin.lastIndexOf("/"))).mode! & 0o777, 0o700);
  assert.equal((await fetchUnix(admin, "/pending")).status, 200);
  for (const p of ["/pending", "/approve?id=abcd1234", "/deny?id=abcd1234"]) {
    const r = await fetchUnix(stack.socketPath, p, p === "/pending" ? "GET" : "POST");
    assert.equal(r.status, 404, `gate socket answers ${p} with ${r.status}`);
  }
  for (const p of ["/token", "/session", "/identity"]) {
    assert.equal((await fetchUnix(admin, p)).status, 404, `admin socket answers ${p}`);
  }
  const unknown = await gcpGate(stack, ["approve", "--yes", "deadbeef"]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no prod request "deadbeef" is waiting/);
  assert.ok(!unknown.stderr.includes("    at "), "a user error printed a stack trace");
});

Deno.test("queue: the code with-prod printed is in gcp-gate pending; a request without one says none", async () => {
  await using stack = await startStack({ proxy: false, gateToml: QUEUE_PROD_TOML });
  await using wp = await start("with-prod", ["--", "true"], {
    env: baseEnv(stack.home, { GCP_GATE_CONFIG: stack.configPath }),
  });
  const printed = await wp.waitFor(
    /approval code ([A-Z0-9]{3}-[A-Z0-9]{3}) — approve only a request that shows this code/,
  );
  const code = printed[1]!;
  const { id, listing } = await waitPending(stack);
  assert.match(listing, new RegExp(`^ +Code: +${code} — must match what with-prod printed$`, "m"));
  // The approve prompt repeats it right above the answer.
  const no = await gcpGate(stack, ["approve", id], "no\n");
  assert.match(
    no.stderr,
    new RegExp(`type "yes" to approve project .*code ${code}, request ${id}`),
  );
  assert.equal((await gcpGate(stack, ["approve", "--yes", id])).code, 0);
  assert.equal((await wp.status).code, 0, wp.output());
  // The code is in the audit line of the grant (written in the background: poll briefly).
  const auditPath = `${stack.home}/.local/state/gcp-gate/audit.log`;
  let audit = "";
  for (let i = 0; i < 40 && !audit.includes(`"approval_code":"${code}"`); i++) {
    await new Promise((r) => setTimeout(r, 50));
    try {
      audit = Deno.readTextFileSync(auditPath);
    } catch { /* not written yet */ }
  }
  assert.match(audit, new RegExp(`"result":"granted".*"approval_code":"${code}"`));

  const asked = askSession(stack);
  const other = await waitPending(stack);
  assert.match(other.listing, /^ +Code: +none \(not from with-prod\)$/m);
  assert.equal((await gcpGate(stack, ["deny", other.id])).code, 0);
  await asked;
});
