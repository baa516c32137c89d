/**
 * `gcp-gate doctor` on a profiles config, through the built launcher and a
 * running gate: every profile's accounts, socket, running gate and approval
 * methods are checked and named (text and --json), and an account two
 * profiles share is probed at Google once.
 */
import assert from "node:assert/strict";
import { devSa, startProfilesGate } from "./_profiles.ts";
import { assertNoSecrets, PROD_SA } from "./_utils.ts";

interface Report {
  exit_code: number;
  checks: { id: string; status: string; message: string; fix?: string; profile?: string }[];
}

const probes = (g: { fake: { requests: { path: string }[] } }): string[] =>
  g.fake.requests.filter((r) => r.path.endsWith(":generateAccessToken")).map((r) =>
    decodeURIComponent(/serviceAccounts\/([^/:]+):/.exec(r.path)![1]!)
  );

Deno.test("gcp-gate doctor with profiles: each profile checked and named; a shared account probed once", async () => {
  await using g = await startProfilesGate([
    { name: "web", toml: `prod_service_account = "${PROD_SA}"` },
    { name: "api", serviceAccount: devSa("web") },
    { name: "agent", toml: `approval_methods = "dialog"` },
  ], { topToml: `approval_methods = "queue"` });
  const before = probes(g).length;
  const res = await g.cli("doctor", "--json");
  assertNoSecrets(res.stdout + res.stderr, g.fake, "doctor output");
  const report: Report = JSON.parse(res.stdout);
  const of = (id: string) => report.checks.filter((c) => c.id === id);
  const text = `${res.stdout}\n${res.stderr}`;

  // web and api share their dev account: 3 profiles, 3 distinct accounts, 3 probes.
  assert.deepEqual(
    probes(g).slice(before).sort(),
    [devSa("agent"), devSa("web"), PROD_SA].sort(),
  );
  assert.deepEqual(of("dev-account").map((c) => [c.profile, c.status]), [
    ["web", "PASS"],
    ["api", "PASS"],
    ["agent", "PASS"],
  ], text);
  assert.match(of("dev-account")[1]!.message, /^profile api: dev account dev-web@\S+ can be/);
  assert.match(of("prod-account")[0]!.message, /^profile web: prod account prod@\S+ can be/);
  assert.match(of("prod-account")[2]!.message, /^profile agent: no prod_service_account/);
  for (const [i, name] of ["web", "api", "agent"].entries()) {
    const running = of("gate-running")[i]!;
    assert.equal(running.status, "PASS", text);
    assert.equal(running.profile, name);
    assert.ok(running.message.startsWith(`profile ${name}: a gate answers on ${g.socket(name)}`));
    assert.equal(of("gate-socket")[i]!.profile, name);
  }
  // agent's own approval method (a dialog, no display here) fails; the queue profiles pass.
  assert.deepEqual(of("approval").map((c) => c.status), ["PASS", "PASS", "FAIL"], text);
  assert.match(of("approval")[2]!.message, /^profile agent: no approval method can ask you now/);
  for (const id of ["adc", "adc-refresh", "engineer", "clock", "admin-socket", "service"]) {
    assert.equal(of(id).length, 1, `${id} once:\n${text}`);
  }
  assert.equal(report.exit_code, 1);
  assert.equal(res.code, 1);

  const plain = await g.cli("doctor");
  assert.match(plain.stdout, /^PASS {2}dev-account +profile api: dev account dev-web@/m);
  assert.match(plain.stdout, /^FAIL {2}approval +profile agent: /m);
  assertNoSecrets(plain.stdout + plain.stderr, g.fake, "doctor text output");
});

Deno.test("gcp-gate doctor with profiles: a profile's account Google refuses fails under that profile only", async () => {
  await using g = await startProfilesGate([{ name: "web" }, { name: "api" }], {
    topToml: `approval_methods = "queue"`,
  });
  g.fake.inject({ match: /dev-api%40[^/]*:generateAccessToken$/, status: 403, times: 1 });
  const res = await g.cli("doctor", "--json");
  const report: Report = JSON.parse(res.stdout);
  const dev = report.checks.filter((c) => c.id === "dev-account");
  assert.deepEqual(dev.map((c) => [c.profile, c.status]), [["web", "PASS"], ["api", "FAIL"]]);
  assert.match(dev[1]!.message, /^profile api: engineer@example\.com may not mint tokens for/);
  assert.match(dev[1]!.fix!, /add-iam-policy-binding dev-api@demo-project\S+ --member=user:/);
  assert.equal(res.code, 1);
});
