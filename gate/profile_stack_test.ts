import assert from "node:assert/strict";
import { stubGoogleApi } from "./_prod_fakes.ts";
import { GateError } from "../shared/errors.ts";
import { createGateClient } from "../shared/gate_client.ts";
import { createLogger } from "../shared/log.ts";
import { type Approver, DENY_ALL } from "./approval/types.ts";
import type { AuditEntry, AuditLog } from "./audit.ts";
import type { CredentialProvider } from "./credentials.ts";
import {
  MAX_UPSTREAM_PER_PROFILE,
  type SharedCollaborators,
  startProfileStack,
} from "./profile_stack.ts";
import type { Profile } from "./profiles.ts";

function fakes() {
  const mints: { sa: string; release: () => void }[] = [];
  const api = stubGoogleApi({
    // Each mint waits until the test releases it: misses pile up.
    generateAccessToken: (_src, sa) =>
      new Promise((resolve) => {
        mints.push({
          sa,
          release: () => resolve({ token: `tok-${sa}`, expiresAt: Date.now() + 3600_000 }),
        });
      }),
    tokenEmail: () => Promise.resolve("engineer@example.com"),
  });
  const credentials: CredentialProvider = {
    current: () => {
      throw new GateError("credentials_expired", "none");
    },
    token: () => Promise.resolve({ token: "adc", expiresAt: Date.now() + 3600_000 }),
  };
  const lines: AuditEntry[] = [];
  const audit: AuditLog = {
    record: (e) => void lines.push(e),
    countHit: () => {},
    flush: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  return { api, credentials, audit, lines, mints };
}

/** What the profiles share, over the fakes, with one approver for all. */
function collaborators(
  f: ReturnType<typeof fakes>,
  approver: Approver,
  signal: AbortSignal,
): SharedCollaborators {
  return {
    api: f.api,
    credentials: f.credentials,
    audit: f.audit,
    log: createLogger({ write: () => {} }),
    universeDomain: "googleapis.com",
    pamEndpoint: "https://pam.test",
    approverFor: () => approver,
    signal,
  };
}

function profile(dir: string, name: string, named = true): Profile {
  return {
    name,
    named,
    socket_path: `${dir}/${name}/gate.sock`,
    project_id: "p",
    service_account: `${name}@p.iam.gserviceaccount.com`,
    prod_service_account: undefined,
    max_token_ttl_seconds: 3600,
    session_ttl_seconds: 3600,
    approval_methods: ["queue"],
    dialog_timeout_seconds: 60,
    denial_cooldown_seconds: 5,
    max_approvals_per_minute: 10,
    prod_token_ttl_seconds: 600,
    pam_entitlement: undefined,
    pam_location: "global",
    pam_grant_duration_seconds: 3600,
    pam_wait_seconds: 900,
    require_reason: false,
    max_connections: 256,
    idle_timeout_seconds: 30,
  };
}

Deno.test("startProfileStack(): misses waiting on Google are bounded per profile; the other profile is untouched", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "gcp-gate-stack-" });
  Deno.chmodSync(dir, 0o700);
  const f = fakes();
  const stopping = new AbortController();
  const shared = collaborators(f, DENY_ALL, stopping.signal);
  const a = await startProfileStack(profile(dir, "a"), shared);
  const b = await startProfileStack(profile(dir, "b"), shared);
  try {
    const ca = createGateClient({ socketPath: `${dir}/a/gate.sock` });
    const settled: string[] = [];
    const asks = Array.from(
      { length: MAX_UPSTREAM_PER_PROFILE + 5 },
      (_, i) =>
        ca.token({ ttlSeconds: 600 + i }).then(() => "ok", (e) => e.code).then((r) => {
          settled.push(r);
          return r;
        }),
    );
    // The refused ones answer at once, while the admitted ones still wait.
    // Which 5 are refused depends on the order the connections are served in.
    for (const end = Date.now() + 5000; settled.length < 5 && Date.now() < end;) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(settled, Array(5).fill("rate_limited"));
    assert.equal(f.mints.length, MAX_UPSTREAM_PER_PROFILE);
    // Profile b is not held back by a's full queue.
    const cb = createGateClient({ socketPath: `${dir}/b/gate.sock` });
    const tb = cb.token();
    await new Promise((r) => setTimeout(r, 50));
    const mintB = f.mints.find((m) => m.sa.startsWith("b@"));
    assert.ok(mintB, "b's miss reached Google");
    mintB.release();
    assert.equal((await tb).access_token, "tok-b@p.iam.gserviceaccount.com");
    // Callers of a key already in flight join it, uncounted: no refusal, no new mint.
    const joiners = Array.from({ length: 50 }, () => ca.token({ ttlSeconds: 600 }));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(f.mints.length, MAX_UPSTREAM_PER_PROFILE + 1);
    for (const m of f.mints) m.release();
    assert.equal(new Set((await Promise.all(joiners)).map((t) => t.access_token)).size, 1);
    assert.deepEqual(
      (await Promise.all(asks)).filter((x) => x === "ok").length,
      MAX_UPSTREAM_PER_PROFILE,
    );
    // Audit lines of named profiles carry their name; status lists lifetimes, never tokens.
    assert.ok(f.lines.some((l) => l.profile === "a") && f.lines.some((l) => l.profile === "b"));
    const s = b.status();
    assert.equal(s.listening, true);
    assert.equal(s.dev_tokens.length, 1);
    assert.ok(!JSON.stringify(s).includes("tok-"));
  } finally {
    await a.stop("test over");
    await b.stop("test over");
    stopping.abort();
    Deno.removeSync(dir, { recursive: true });
  }
  assert.equal(a.status().listening, false);
});

Deno.test("ProfileStack.update(): new limits apply at once; a new prod account revokes the open sessions (audited)", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "gcp-gate-stack-" });
  Deno.chmodSync(dir, 0o700);
  const f = fakes();
  const stopping = new AbortController();
  const approveAll: Approver = {
    decide: () => Promise.resolve({ approved: true, method: "queue", detail: "test" }),
  };
  const stack = await startProfileStack({
    ...profile(dir, "web"),
    prod_service_account: "p1@x.iam.gserviceaccount.com",
  }, collaborators(f, approveAll, stopping.signal));
  try {
    const gate = createGateClient({ socketPath: `${dir}/web/gate.sock` });
    const s = await (await gate.openSession({
      scopes: ["https://www.googleapis.com/auth/cloud-platform"],
    })).session;
    assert.equal(stack.status().sessions.length, 1);
    // Same prod account, tighter token cap: the session survives, the cap applies.
    stack.update({ ...stack.profile, max_token_ttl_seconds: 600 });
    assert.equal((await gate.getSession(s.session_id)).session_id, s.session_id);
    const capped = await gate.token({ ttlSeconds: 3000 }).catch((e) => e);
    assert.ok(capped instanceof GateError && capped.code === "bad_request", String(capped));
    // Another prod account: what was approved for p1 must not mint as p2.
    stack.update({ ...stack.profile, prod_service_account: "p2@x.iam.gserviceaccount.com" });
    const gone = await gate.getSession(s.session_id).catch((e) => e);
    assert.ok(gone instanceof GateError && gone.code === "session_not_found", String(gone));
    assert.ok(
      f.lines.some((l) =>
        l.result === "revoked" && l.profile === "web" && l.session === s.session_id.slice(0, 8)
      ),
    );
    assert.equal(stack.status().sessions.length, 0);
  } finally {
    await stack.stop("test over");
    stopping.abort();
    Deno.removeSync(dir, { recursive: true });
  }
});
