import assert from "node:assert/strict";
import { stubGoogleApi } from "./_prod_fakes.ts";
import { type Config, loadInvocation } from "../shared/config.ts";
import { GateError, isGateError } from "../shared/errors.ts";
import { createGateClient } from "../shared/gate_client.ts";
import { createLogger } from "../shared/log.ts";
import type { Approver } from "./approval/types.ts";
import type { AuditLog } from "./audit.ts";
import { GATE_CLI } from "./cli.ts";
import { startProfileSet } from "./profile_set.ts";
import type { SharedCollaborators } from "./profile_stack.ts";
import type { ApprovalRateLimiter } from "./rate_limit.ts";

const CLOUD = "https://www.googleapis.com/auth/cloud-platform";

/** A real config, loaded as the gate loads it, with one profile `web` at `socket`. */
function config(dir: string, socket: string, webToml: string): Config {
  const file = `${dir}/gate.toml`;
  const toml = [
    `project_id = "p"`,
    `admin_socket_path = "${dir}/admin/admin.sock"`,
    `[profiles.web]`,
    `socket_path = "${socket}"`,
    webToml,
  ].join("\n");
  return loadInvocation(GATE_CLI, ["--config", file], {
    env: (n) => (n === "HOME" ? dir : undefined),
    readTextFile: (p) => (p === file ? toml : undefined),
    cwd: () => "/",
  }).config;
}

/** Denies every prod request as a human would: through the profile's limiter. */
function denyingApprover(_p: unknown, limiter: ApprovalRateLimiter): Approver {
  return {
    decide: (req) => {
      limiter.acquire(req.id).release("denied");
      return Promise.resolve({ approved: false, method: "queue", detail: "denied in test" });
    },
  };
}

function shared(signal: AbortSignal): SharedCollaborators {
  const api = stubGoogleApi({ tokenEmail: () => Promise.resolve("engineer@example.com") });
  const audit: AuditLog = {
    record: () => {},
    countHit: () => {},
    flush: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  return {
    api,
    credentials: {
      current: () => {
        throw new GateError("credentials_expired", "none");
      },
      token: () => Promise.resolve({ token: "adc", expiresAt: Date.now() + 3600_000 }),
    },
    audit,
    log: createLogger({ write: () => {} }),
    universeDomain: "googleapis.com",
    pamEndpoint: "https://pam.test",
    approverFor: denyingApprover,
    signal,
  };
}

async function askProd(socketPath: string): Promise<string> {
  const gate = createGateClient({ socketPath });
  return await gate.openSession({ scopes: [CLOUD] }).then(
    () => "approved",
    (e) => isGateError(e) ? `${e.code}: ${e.message}` : String(e),
  );
}

Deno.test("ProfileSet reload: a profile's cooldown survives a change of its limits and a move of its socket", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "gcp-gate-set-" });
  Deno.chmodSync(dir, 0o700);
  const stopping = new AbortController();
  const first = `${dir}/one/gate.sock`;
  const moved = `${dir}/two/gate.sock`;
  let next = config(dir, first, "denial_cooldown_seconds = 600");
  const set = await startProfileSet(next, shared(stopping.signal), () => next);
  try {
    assert.match(await askProd(first), /^denied/);
    assert.match(await askProd(first), /^rate_limited: .*denied.*600 s/);
    // Changed limits (a shorter cooldown): the running one keeps its end.
    next = config(dir, first, "denial_cooldown_seconds = 1\nmax_approvals_per_minute = 5");
    assert.deepEqual((await set.reload()).updated, ["web"]);
    assert.match(await askProd(first), /^rate_limited: .*retry in (59\d|600) s/);
    // Moved to another socket: a new stack, the same limiter.
    next = config(dir, moved, "denial_cooldown_seconds = 1200");
    assert.deepEqual((await set.reload()).started, ["web"]);
    assert.match(
      await askProd(moved),
      /^rate_limited: .*refused for 1200 s.*retry in 1(19\d|200) s/,
    );
  } finally {
    await set.stopAll("test over");
    stopping.abort();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("ProfileSet reload: a profile removed and added back starts without the old cooldown", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "gcp-gate-set-" });
  Deno.chmodSync(dir, 0o700);
  const stopping = new AbortController();
  const sock = `${dir}/one/gate.sock`;
  const web = config(dir, sock, "denial_cooldown_seconds = 600");
  let next = web;
  const set = await startProfileSet(web, shared(stopping.signal), () => next);
  try {
    assert.match(await askProd(sock), /^denied/);
    // Without profiles: the implicit one serves the top-level socket_path.
    next = { ...web, profiles: [], socket_path: `${dir}/top/gate.sock` };
    assert.deepEqual((await set.reload()).stopped, ["web"]);
    next = web;
    assert.deepEqual((await set.reload()).started, ["web"]);
    // Forgetting is what "removed" means; only a surviving profile carries its state.
    assert.match(await askProd(sock), /^denied/);
  } finally {
    await set.stopAll("test over");
    stopping.abort();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("ProfileSet reload: a request pending across the reload still blocks a second one, then frees the slot", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "gcp-gate-set-" });
  Deno.chmodSync(dir, 0o700);
  const stopping = new AbortController();
  const sock = `${dir}/one/gate.sock`;
  let decide!: () => void;
  let asked = 0;
  const base = shared(stopping.signal);
  const waiting: SharedCollaborators = {
    ...base,
    // Holds the first request until the test decides it (approved: no cooldown).
    approverFor: (_p, limiter) => ({
      decide: async (req) => {
        const permit = limiter.acquire(req.id);
        asked++;
        await new Promise<void>((r) => (decide = r));
        permit.release("approved");
        return { approved: false, method: "queue", detail: "test" };
      },
    }),
  };
  let next = config(dir, sock, "max_approvals_per_minute = 10");
  const set = await startProfileSet(next, waiting, () => next);
  try {
    const first = askProd(sock);
    const until = async (n: number) => {
      while (asked < n) await new Promise((r) => setTimeout(r, 10));
    };
    await until(1);
    next = config(dir, sock, "max_approvals_per_minute = 20");
    assert.deepEqual((await set.reload()).updated, ["web"]);
    assert.match(await askProd(sock), /^rate_limited: an approval is already pending/);
    decide();
    await first;
    // The permit taken before the reload freed the slot of the limiter after it.
    const third = askProd(sock);
    await until(2);
    decide();
    assert.doesNotMatch(await third, /rate_limited/);
  } finally {
    await set.stopAll("test over");
    stopping.abort();
    Deno.removeSync(dir, { recursive: true });
  }
});
