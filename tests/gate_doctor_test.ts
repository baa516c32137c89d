/**
 * `gcp-gate doctor` through the built launcher, against the fake Google: each
 * check made to PASS and to WARN/FAIL, the exit codes, --json, and no token
 * in any output.
 */
import assert from "node:assert/strict";
import { type FakeGoogle, startFakeGoogle } from "./fakes/google.ts";
import {
  assertNoSecrets,
  baseEnv,
  DEV_SA,
  hasCommand,
  PROD_SA,
  run,
  start,
  tempDir,
} from "./_utils.ts";

interface Report {
  exit_code: number;
  checks: { id: string; status: string; message: string; fix?: string }[];
}

interface Doctor {
  code: number;
  report: Report;
  text: string;
  check(id: string): Report["checks"][number];
}

/** A temp home with ADC and a gate config pointing at `fake`. */
function setup(h: string, fake: FakeGoogle, toml = ""): string {
  Deno.writeTextFileSync(`${h}/adc.json`, fake.adcJson(), { mode: 0o600 });
  Deno.mkdirSync(`${h}/run`, { mode: 0o700, recursive: true });
  Deno.chmodSync(`${h}/run`, 0o700);
  const config = `${h}/gate.toml`;
  Deno.writeTextFileSync(
    config,
    [
      `service_account = "${DEV_SA}"`,
      `socket_path = "${h}/run/gcp-gate/gate.sock"`,
      `credentials_file = "${h}/adc.json"`,
      toml,
      fake.endpointsToml(),
    ].join("\n"),
  );
  return config;
}

async function doctor(
  h: string,
  fake: FakeGoogle,
  env: Record<string, string> = {},
): Promise<Doctor> {
  const res = await run("gcp-gate", ["doctor", "--json", "--config", `${h}/gate.toml`], {
    env: baseEnv(h, env),
  });
  assertNoSecrets(res.stdout + res.stderr, fake, "gcp-gate doctor output");
  let report: Report;
  try {
    report = JSON.parse(res.stdout);
  } catch {
    throw new Error(`doctor printed no JSON (exit ${res.code}):\n${res.stdout}\n${res.stderr}`);
  }
  const text = `${res.stdout}\n${res.stderr}`;
  return {
    code: res.code,
    report,
    text,
    check(id) {
      const c = report.checks.find((x) => x.id === id);
      assert.ok(c, `no check ${id} in:\n${text}`);
      return c;
    },
  };
}

function installUnit(h: string, config: string): void {
  Deno.mkdirSync(`${h}/.config/systemd/user`, { recursive: true });
  Deno.writeTextFileSync(
    `${h}/.config/systemd/user/gcp-gate.service`,
    `[Service]\nExecStart="/opt/gcp-gate/bin/gcp-gate" "--config" "${config}"\n`,
  );
}

Deno.test("gcp-gate doctor: a healthy host passes every check and exits 0", async () => {
  await using home = tempDir();
  await using fake = await startFakeGoogle();
  const h = home.path;
  const config = setup(h, fake, `approval_methods = "queue"\nprod_service_account = "${PROD_SA}"`);
  installUnit(h, config);
  await using gate = await start("gcp-gate", ["--config", config], {
    env: baseEnv(h),
    ready: /ready: listening on/,
  });
  const d = await doctor(h, fake);
  assert.deepEqual(
    d.report.checks.filter((c) => c.status !== "PASS"),
    [],
    d.text,
  );
  assert.equal(d.code, 0);
  assert.equal(d.report.exit_code, 0);
  assert.match(d.check("adc").message, /adc\.json \(authorized_user\)/);
  assert.match(d.check("engineer").message, /engineer@example\.com/);
  assert.match(d.check("dev-account").message, /can be impersonated/);
  assert.match(d.check("prod-account").message, /prod@demo-project/);
  assert.match(d.check("gate-running").message, /a gate answers/);
  assert.match(d.check("service").message, /installed at .*gcp-gate\.service/);
  // The impersonation probe asked for a short token, not the dev default.
  const asked = fake.requests.filter((r) => r.path.endsWith(":generateAccessToken"));
  assert.ok(asked.some((r) => JSON.parse(r.body).lifetime === "600s"));
  assertNoSecrets(gate.output(), fake);
});

Deno.test("gcp-gate doctor: the text report puts the fix under each WARN and exits 3", async () => {
  await using home = tempDir();
  await using fake = await startFakeGoogle();
  const h = home.path;
  setup(h, fake, `approval_methods = "queue"`);
  const res = await run("gcp-gate", ["doctor", "--config", `${h}/gate.toml`], { env: baseEnv(h) });
  assertNoSecrets(res.stdout + res.stderr, fake);
  assert.equal(res.code, 3, res.stdout + res.stderr);
  assert.match(res.stdout, /^WARN {2}gate-running +no gate is running/m);
  assert.match(res.stdout, /^ +fix: systemctl --user start gcp-gate/m);
  assert.match(res.stdout, /^WARN {2}service +not installed/m);
  assert.match(res.stdout, /^ +fix: gcp-gate install-service$/m);
  assert.match(res.stdout, /passed, 2 warnings, 0 failed$/m);
});

Deno.test("gcp-gate doctor: expired ADC fails the refresh with the re-login command", async () => {
  await using home = tempDir();
  await using fake = await startFakeGoogle();
  const h = home.path;
  setup(h, fake);
  fake.revokeRefreshToken();
  const d = await doctor(h, fake);
  assert.equal(d.code, 1);
  assert.equal(d.check("adc").status, "PASS");
  const refresh = d.check("adc-refresh");
  assert.equal(refresh.status, "FAIL", d.text);
  assert.match(refresh.message, /invalid_grant|expired/);
  assert.equal(refresh.fix, "gcloud auth application-default login");
  assert.equal(d.check("dev-account").status, "FAIL");
  assert.ok(fake.count(/POST \/oauth2\/token$/) >= 1, "doctor never tried a real refresh");
});

Deno.test("gcp-gate doctor: a missing ADC file fails and names the paths", async () => {
  await using home = tempDir();
  await using fake = await startFakeGoogle();
  const h = home.path;
  setup(h, fake);
  Deno.removeSync(`${h}/adc.json`);
  const d = await doctor(h, fake);
  assert.equal(d.code, 1);
  assert.equal(d.check("adc").status, "FAIL");
  assert.match(d.check("adc").message, /adc\.json do not exist/);
});

Deno.test("gcp-gate doctor: impersonation 403 prints the add-iam-policy-binding line", async () => {
  await using home = tempDir();
  await using fake = await startFakeGoogle();
  const h = home.path;
  setup(h, fake, `prod_service_account = "${PROD_SA}"`);
  fake.inject({ match: /generateAccessToken$/, status: 403, times: 2 });
  const d = await doctor(h, fake);
  assert.equal(d.code, 1);
  for (const [id, sa] of [["dev-account", DEV_SA], ["prod-account", PROD_SA]]) {
    const c = d.check(id!);
    assert.equal(c.status, "FAIL", d.text);
    assert.equal(
      c.fix,
      `gcloud iam service-accounts add-iam-policy-binding ${sa} --member=user:engineer@example.com --role=roles/iam.serviceAccountTokenCreator`,
    );
  }
});

Deno.test("gcp-gate doctor: no service_account fails with the config line to add", async () => {
  await using home = tempDir();
  await using fake = await startFakeGoogle();
  const h = home.path;
  setup(h, fake);
  const config = `${h}/gate.toml`;
  Deno.writeTextFileSync(config, Deno.readTextFileSync(config).replace(/^service_account.*$/m, ""));
  const d = await doctor(h, fake);
  assert.equal(d.check("dev-account").status, "FAIL");
  assert.match(d.check("dev-account").fix!, /service_account = .*>> .*gate\.toml/);
});

Deno.test("gcp-gate doctor: an unknown engineer email warns", async () => {
  await using home = tempDir();
  await using fake = await startFakeGoogle();
  const h = home.path;
  setup(h, fake, `approval_methods = "queue"`);
  fake.inject({ match: /\/oauth2\/tokeninfo$/, status: 400, body: { error: "invalid_token" } });
  fake.inject({ match: /generateAccessToken$/, status: 403 });
  const d = await doctor(h, fake);
  assert.equal(d.check("engineer").status, "WARN", d.text);
  // Without an email the grant line says whom to put in.
  assert.match(d.check("dev-account").fix!, / --member=user:<your-email> /);
});

Deno.test("gcp-gate doctor: clock skew against Google's Date header warns, then fails", async () => {
  await using home = tempDir();
  await using fake = await startFakeGoogle();
  const h = home.path;
  setup(h, fake);
  for (const [offsetS, status] of [[120, "WARN"], [-900, "FAIL"]] as const) {
    const date = new Date(Date.now() + offsetS * 1000).toUTCString();
    fake.inject({ match: /^GET \/oauth2\/tokeninfo$/, status: 400, headers: { date } });
    const d = await doctor(h, fake);
    const c = d.check("clock");
    assert.equal(c.status, status, d.text);
    assert.match(c.message, new RegExp(offsetS > 0 ? "behind" : "ahead of"));
    assert.equal(c.fix, "sudo timedatectl set-ntp true");
  }
});

Deno.test("gcp-gate doctor: a socket directory open to others fails with chmod 700", async () => {
  await using home = tempDir();
  await using fake = await startFakeGoogle();
  const h = home.path;
  setup(h, fake);
  Deno.mkdirSync(`${h}/run/gcp-gate`);
  Deno.chmodSync(`${h}/run/gcp-gate`, 0o755);
  const d = await doctor(h, fake);
  const c = d.check("gate-socket");
  assert.equal(c.status, "FAIL", d.text);
  assert.match(c.message, /mode 755/);
  assert.equal(c.fix, `chmod 700 ${h}/run/gcp-gate`);
});

Deno.test("gcp-gate doctor: a world-usable stale socket fails with chmod 600 and warns it is dead", async () => {
  await using home = tempDir();
  await using fake = await startFakeGoogle();
  const h = home.path;
  setup(h, fake);
  Deno.mkdirSync(`${h}/run/gcp-gate`, { mode: 0o700 });
  Deno.chmodSync(`${h}/run/gcp-gate`, 0o700);
  const path = `${h}/run/gcp-gate/gate.sock`;
  // A socket nobody answers HTTP on (a crashed gate's leftover looks the same).
  const l = Deno.listen({ transport: "unix", path });
  void (async () => {
    try {
      for await (const c of l) c.close();
    } catch { /* closed */ }
  })();
  Deno.chmodSync(path, 0o666);
  let d: Doctor;
  try {
    d = await doctor(h, fake);
  } finally {
    l.close();
  }
  assert.equal(d.check("gate-socket").status, "FAIL", d.text);
  assert.equal(d.check("gate-socket").fix, `chmod 600 ${path}`);
  assert.equal(d.check("gate-running").status, "WARN");
  assert.match(d.check("gate-running").message, /left over/);
});

Deno.test("gcp-gate doctor: an admin socket beside the gate socket fails", async () => {
  await using home = tempDir();
  await using fake = await startFakeGoogle();
  const h = home.path;
  setup(h, fake, `admin_socket_path = "${h}/run/gcp-gate/admin.sock"`);
  const d = await doctor(h, fake);
  const c = d.check("admin-socket");
  assert.equal(c.status, "FAIL", d.text);
  assert.match(c.message, /could approve its own prod request/);
});

Deno.test("gcp-gate doctor: approval methods: none usable fails, some warns, all passes", async () => {
  await using home = tempDir();
  await using fake = await startFakeGoogle();
  const h = home.path;
  const withMethods = (m: string): void => void setup(h, fake, `approval_methods = "${m}"`);
  withMethods("dialog");
  let d = await doctor(h, fake); // no DISPLAY, no TTY
  assert.equal(d.check("approval").status, "FAIL", d.text);
  assert.match(d.check("approval").message, /no display|not found/);
  assert.match(d.check("approval").fix!, /approval_methods = "dialog,queue"/);
  withMethods("dialog,queue");
  d = await doctor(h, fake);
  assert.equal(d.check("approval").status, "WARN", d.text);
  withMethods("queue");
  d = await doctor(h, fake);
  assert.equal(d.check("approval").status, "PASS", d.text);
});

Deno.test({
  name: "gcp-gate doctor: the dialog counts as available with zenity and a display",
  ignore: !hasCommand("/usr/bin/zenity"),
  fn: async () => {
    await using home = tempDir();
    await using fake = await startFakeGoogle();
    const h = home.path;
    setup(h, fake, `approval_methods = "dialog"`);
    const d = await doctor(h, fake, { DISPLAY: ":99" });
    assert.equal(d.check("approval").status, "PASS", d.text);
    assert.match(d.check("approval").message, /dialog \(\/usr\/bin\/zenity on X11\)/);
  },
});

Deno.test("gcp-gate doctor: an installed unit with no gate answering warns how to start it", async () => {
  await using home = tempDir();
  await using fake = await startFakeGoogle();
  const h = home.path;
  const config = setup(h, fake);
  installUnit(h, config);
  const d = await doctor(h, fake);
  const c = d.check("service");
  assert.equal(c.status, "WARN", d.text);
  assert.match(c.message, /installed at .* but no gate answers/);
  assert.equal(c.fix, "systemctl --user daemon-reload && systemctl --user enable --now gcp-gate");
});

Deno.test("gcp-gate doctor: an invalid config stops before any check with exit 2 and one line", async () => {
  await using home = tempDir();
  const h = home.path;
  Deno.writeTextFileSync(`${h}/gate.toml`, `approval_methods = "carrier-pigeon"\n`);
  const res = await run("gcp-gate", ["doctor", "--config", `${h}/gate.toml`], { env: baseEnv(h) });
  assert.equal(res.code, 2);
  assert.equal(res.stdout, "");
  assert.match(res.stderr, /^gcp-gate: config file .*gate\.toml: "approval_methods" must be/);
  assert.doesNotMatch(res.stderr, /\n.*at /, "no stack trace");
});

Deno.test("gcp-gate doctor: a dev account that does not exist fails and names the key", async () => {
  await using home = tempDir();
  await using fake = await startFakeGoogle();
  const h = home.path;
  const config = setup(h, fake);
  Deno.writeTextFileSync(
    config,
    Deno.readTextFileSync(config).replace(DEV_SA, "dev@example.com"),
  );
  const d = await doctor(h, fake);
  const c = d.check("dev-account");
  assert.equal(c.status, "FAIL", d.text);
  assert.match(c.message, /does not exist/);
  assert.equal(c.fix, `correct service_account in ${config}`);
});

Deno.test("gcp-gate doctor: Google unreachable fails the refresh and cannot measure the clock", async () => {
  await using home = tempDir();
  await using fake = await startFakeGoogle();
  const h = home.path;
  const config = setup(h, fake);
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dead = `http://127.0.0.1:${l.addr.port}`;
  l.close();
  Deno.writeTextFileSync(config, Deno.readTextFileSync(config).replaceAll(fake.base, dead));
  const d = await doctor(h, fake);
  assert.equal(d.check("adc-refresh").status, "FAIL", d.text);
  assert.match(d.check("adc-refresh").message, /cannot reach/);
  assert.match(d.check("adc-refresh").fix!, /check the network and endpoints\.oauth2/);
  assert.equal(d.check("clock").status, "WARN");
  assert.equal(d.code, 1);
});

Deno.test("gcp-gate doctor: a PAM entitlement you can read passes with its roles; an unknown one fails", async () => {
  await using home = tempDir();
  await using fake = await startFakeGoogle();
  const h = home.path;
  setup(h, fake, `pam_entitlement = "prod-access"\nproject_id = "demo-project"`);
  const ok = (await doctor(h, fake)).check("pam-entitlement");
  assert.equal(ok.status, "PASS", ok.message);
  assert.match(ok.message, /entitlements\/prod-access is visible: roles\/run\.admin/);
  setup(h, fake, `pam_entitlement = "no-such-entitlement"\nproject_id = "demo-project"`);
  const bad = (await doctor(h, fake)).check("pam-entitlement");
  assert.equal(bad.status, "FAIL", bad.message);
  assert.match(
    bad.fix ?? "",
    /^gcloud beta pam entitlements describe no-such-entitlement --location=global --project=demo-project/,
  );
});
