import assert from "node:assert/strict";
import { stubGoogleApi } from "./_prod_fakes.ts";
import { type Config, loadInvocation } from "../shared/config.ts";
import type { CheckResult } from "../shared/doctor_report.ts";
import { GateError } from "../shared/errors.ts";
import { GATE_CLI } from "./cli.ts";
import { type GateDoctorDeps, runGateDoctor } from "./doctor.ts";
import type { PamClient } from "./pam/client.ts";

const FILE = "/home/u/gate.toml";
const unused = (): Promise<never> => Promise.reject(new Error("unused"));
const sa = (n: string): string => `${n}@p.iam.gserviceaccount.com`;

/** A real config, loaded as the gate loads it, from `toml`. */
function config(toml: string): Config {
  return loadInvocation(GATE_CLI, ["--config", FILE], {
    env: (n) => (n === "HOME" ? "/home/u" : undefined),
    readTextFile: (p) => (p === FILE ? toml : undefined),
    cwd: () => "/",
  }).config;
}

/** Doctor deps whose Google answers `mint(sa)` and records every probe. */
function deps(mint: (account: string) => Promise<number> = () => Promise.resolve(0)) {
  const probes: string[] = [];
  const entitlements: string[] = [];
  const api = stubGoogleApi({
    generateAccessToken: async (_src, account) => {
      probes.push(account);
      const expiresAt = Date.now() + 600_000 + (await mint(account));
      return { token: `probe-token-${account}`, expiresAt };
    },
    tokenEmail: () => Promise.resolve("engineer@example.com"),
  });
  const pam: PamClient = {
    getEntitlement: (_src, name) => {
      entitlements.push(name);
      return Promise.resolve({ name, roles: ["roles/owner"], maxSeconds: 3600 });
    },
    createGrant: unused,
    getGrant: unused,
    searchOwnGrants: unused,
    withdrawGrant: unused,
    operationDone: unused,
  };
  const adc = { token: "adc", expiresAt: Date.now() + 3600_000 };
  const d: GateDoctorDeps = {
    api,
    credentials: {
      current: () => ({
        type: "authorized_user",
        path: "/home/u/adc.json",
        email: undefined,
        getToken: () => Promise.resolve(adc),
      }),
      token: () => Promise.resolve(adc),
    },
    fetch: () =>
      Promise.resolve(new Response(null, { headers: { date: new Date().toUTCString() } })),
    now: Date.now,
    pam,
    lstat: () => undefined,
    uid: () => 1,
    health: () => Promise.resolve(undefined),
    env: (n) => (n === "HOME" ? "/home/u" : undefined),
    os: "linux",
    isTerminal: () => false,
    readTextFile: () => undefined,
    version: "v",
  };
  return { deps: d, probes, entitlements };
}

function byId(results: CheckResult[], id: string): CheckResult[] {
  return results.filter((r) => r.id === id);
}

const PROFILES = `
project_id = "p"
approval_methods = "queue"
service_account = "${sa("shared-dev")}"
[profiles.web]
socket_path = "/run/web/gate.sock"
prod_service_account = "${sa("deploy")}"
pam_entitlement = "prod-access"
[profiles.api]
socket_path = "/run/api/gate.sock"
approval_methods = "dialog"
pam_entitlement = "prod-access"
[profiles.agent]
socket_path = "/run/agent/gate.sock"
service_account = "${sa("deploy")}"
`;

Deno.test("runGateDoctor(): each profile's checks are named; an account or entitlement shared by profiles is asked for once", async () => {
  const f = deps();
  const results = await runGateDoctor(config(PROFILES), f.deps);
  // Three profiles, two distinct accounts: two probes; one entitlement read.
  assert.deepEqual(f.probes, [sa("shared-dev"), sa("deploy")]);
  assert.deepEqual(f.entitlements, ["projects/p/locations/global/entitlements/prod-access"]);
  const dev = byId(results, "dev-account");
  assert.deepEqual(dev.map((r) => [r.profile, r.status]), [
    ["web", "PASS"],
    ["api", "PASS"],
    ["agent", "PASS"],
  ]);
  assert.match(dev[0]!.message, /^profile web: dev account shared-dev@p\S+ can be impersonated/);
  assert.match(dev[2]!.message, /^profile agent: dev account deploy@/);
  const prod = byId(results, "prod-account");
  assert.match(prod[0]!.message, /^profile web: prod account deploy@p\S+ can be impersonated/);
  assert.match(prod[1]!.message, /^profile api: no prod_service_account/);
  assert.deepEqual(byId(results, "pam-entitlement").map((r) => r.status), [
    "PASS",
    "PASS",
    "PASS",
  ]);
  for (const id of ["gate-socket", "gate-running", "approval"]) {
    assert.deepEqual(byId(results, id).map((r) => r.profile), ["web", "api", "agent"], id);
  }
  assert.match(byId(results, "gate-socket")[1]!.message, /^profile api: \/run\/api does not/);
  // Each profile's own approval methods: api's dialog cannot ask here.
  assert.deepEqual(byId(results, "approval").map((r) => r.status), ["PASS", "FAIL", "PASS"]);
  // The gate's own checks appear once, without a profile.
  for (
    const id of ["config", "adc", "adc-refresh", "engineer", "clock", "admin-socket", "service"]
  ) {
    assert.equal(byId(results, id).length, 1, id);
    assert.equal(byId(results, id)[0]!.profile, undefined, id);
  }
  assert.ok(!JSON.stringify(results).includes("probe-token"), "no token in the report");
});

Deno.test("runGateDoctor(): a failing account names the profile and where to fix the key", async () => {
  const f = deps((account) =>
    account === sa("deploy")
      ? Promise.reject(new GateError("upstream", "IAM said 404 NOT_FOUND", { status: 404 }))
      : Promise.resolve(0)
  );
  const results = await runGateDoctor(config(PROFILES), f.deps);
  const agent = byId(results, "dev-account")[2]!;
  assert.equal(agent.status, "FAIL");
  assert.match(agent.message, /^profile agent: dev account deploy@\S+ does not exist/);
  assert.equal(agent.fix, `correct service_account in [profiles.agent] in ${FILE}`);
  const web = byId(results, "prod-account")[0]!;
  assert.equal(web.fix, `correct prod_service_account in [profiles.web] in ${FILE}`);
  // An inherited key is fixed at the top level.
  const none = config(PROFILES.replace(/^service_account.*$/m, ""));
  const missing = byId(await runGateDoctor(none, deps().deps), "dev-account");
  assert.match(missing[0]!.fix!, /^add service_account = .* to \[profiles\.web\] in /);
  assert.equal(missing[2]!.status, "PASS");
});

Deno.test("runGateDoctor(): once Google fails a probe without a verdict, no further account is probed", async () => {
  const f = deps(() =>
    Promise.reject(
      new GateError("timeout", "Google did not answer within 8000 ms", { status: 504 }),
    )
  );
  const results = await runGateDoctor(config(PROFILES), f.deps);
  assert.deepEqual(f.probes, [sa("shared-dev")], "one silent probe, not one per account");
  const prod = byId(results, "prod-account")[0]!;
  assert.equal(prod.status, "FAIL");
  assert.match(prod.message, /not checked, Google gave no answer on shared-dev@/);
  assert.match(byId(results, "dev-account")[1]!.message, /did not answer within 8000 ms/);
});

Deno.test("runGateDoctor(): without profiles, one result per check, no profile named, as before", async () => {
  const f = deps();
  const results = await runGateDoctor(
    config(`service_account = "${sa("dev")}"\nprod_service_account = "${sa("dev")}"`),
    f.deps,
  );
  assert.deepEqual(results.map((r) => r.id), [
    "config",
    "adc",
    "adc-refresh",
    "engineer",
    "dev-account",
    "prod-account",
    "pam-entitlement",
    "clock",
    "gate-socket",
    "gate-running",
    "admin-socket",
    "approval",
    "service",
  ]);
  assert.ok(results.every((r) => r.profile === undefined && !r.message.startsWith("profile ")));
  assert.match(byId(results, "prod-account")[0]!.message, /^prod account dev@p\S+ can be/);
});
