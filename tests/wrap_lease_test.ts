/**
 * with-prod's session lease and prod token lifetimes, end to end through the
 * built launchers: a session lives only as long as the with-prod that opened
 * it; cancelling with-prod withdraws its pending request; prod tokens are
 * short and stay under Google's default 3600 s cap (enforced by the fake).
 */
import assert from "node:assert/strict";
import {
  approveNext,
  assertNoSecrets,
  baseEnv,
  PROD_SA,
  QUEUE_PROD_TOML,
  run,
  type RunningProcess,
  type Stack,
  start,
  startStack,
} from "./_utils.ts";

const TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token";

function wrapEnv(stack: Stack, extra: Record<string, string> = {}): Record<string, string> {
  return baseEnv(stack.home, { GCP_GATE_CONFIG: stack.configPath, ...extra });
}

interface AuditLine {
  endpoint: string;
  result: string;
  session?: string;
  reason?: string;
  ttl_seconds?: number;
  level?: string;
}

function readAudit(stack: Stack): AuditLine[] {
  try {
    return Deno.readTextFileSync(`${stack.home}/.local/state/gcp-gate/audit.log`)
      .split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as AuditLine);
  } catch {
    return [];
  }
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

async function startApproved(
  stack: Stack,
  args: string[],
  env = wrapEnv(stack),
): Promise<RunningProcess> {
  const p = await start("with-prod", args, { env });
  try {
    await approveNext(stack);
  } catch (err) {
    await p[Symbol.asyncDispose]();
    throw new Error(`${(err as Error).message}\nwith-prod output:\n${p.output()}`);
  }
  return p;
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
  const granted = readAudit(stack).filter((l) => l.endpoint === "/token" && l.level === "prod");
  assert.ok(granted.every((l) => (l.ttl_seconds ?? 0) <= 600), JSON.stringify(granted));
});
