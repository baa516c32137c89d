/**
 * Least-privilege proof, one test per built role: what a role's permission
 * table does not grant is refused by Deno with `NotCapable`.
 *
 * How a probe runs under a role's EXACT permissions: the real launcher in
 * dist/bin/ is started with GCP_GATE_DENO pointing at a small wrapper. The
 * wrapper lets the launcher's resolver step through untouched, records the
 * final `deno run <flags> <lib>/<role>.js` command, and runs it with the
 * probe script in place of the role's bundle: same flags, same environment,
 * same arguments, resolved by the launcher itself. The recorded flags are
 * then checked against the permission table (templatesFor + dist/lib/resolve.js,
 * as the launcher derives them), and the probe is run a second time with
 * those derived flags, which must give the same answers.
 *
 * Every probe also has positive controls (things the role needs, which must
 * NOT be refused), so a probe that is refused everything cannot pass.
 * Non-loopback targets are TEST-NET addresses (192.0.2.1): a NotCapable
 * refusal happens before any packet is sent.
 */
import assert from "node:assert/strict";
import { templatesFor } from "../scripts/build.ts";
import { createGateClient } from "../shared/gate_client.ts";
import { startFakeGoogle } from "./fakes/google.ts";
import {
  baseEnv,
  BIN,
  DEV_SA,
  ROOT,
  run,
  type RunResult,
  start,
  startStack,
  tempDir,
} from "./_utils.ts";
import type { Role } from "../shared/config.ts";

/** One attempted operation. */
type Check =
  | { readonly op: "read"; readonly path: string }
  | { readonly op: "readDir"; readonly path: string }
  | { readonly op: "write"; readonly path: string }
  | { readonly op: "fetch"; readonly url: string }
  | { readonly op: "connect"; readonly hostname: string; readonly port: number }
  | { readonly op: "listen"; readonly hostname: string; readonly port: number }
  | { readonly op: "run"; readonly cmd: string }
  | { readonly op: "env"; readonly name: string };

/** A check and the verdict we expect: refused (NotCapable) or allowed (anything else). */
interface Expectation {
  readonly name: string;
  readonly check: Check;
  readonly refused: boolean;
}

/**
 * The probe: runs each check, prints `{name: "ok" | <error name>}` as one JSON
 * line. It needs no permission of its own (console output is free).
 */
function probeSource(expectations: readonly Expectation[]): string {
  const checks = Object.fromEntries(expectations.map((e) => [e.name, e.check]));
  return `
const checks = ${JSON.stringify(checks)};
async function attempt(c) {
  switch (c.op) {
    case "read": Deno.readFileSync(c.path); return;
    case "readDir": for (const _ of Deno.readDirSync(c.path)) break; return;
    case "write": Deno.writeTextFileSync(c.path, "probe"); return;
    case "fetch": { const r = await fetch(c.url, { signal: AbortSignal.timeout(2000) }); await r.body?.cancel(); return; }
    case "connect": { const conn = await Deno.connect({ hostname: c.hostname, port: c.port }); conn.close(); return; }
    case "listen": { const l = Deno.listen({ hostname: c.hostname, port: c.port }); l.close(); return; }
    case "run": new Deno.Command(c.cmd, { args: [], stdout: "null", stderr: "null" }).outputSync(); return;
    case "env": Deno.env.get(c.name); return;
  }
  throw new Error("unknown op " + c.op);
}
const out = {};
for (const [name, c] of Object.entries(checks)) {
  try {
    await Promise.race([attempt(c), new Promise((_, rej) => setTimeout(() => rej(new Error("timeout")), 3000))]);
    out[name] = "ok";
  } catch (e) {
    out[name] = e instanceof Deno.errors.NotCapable ? "NotCapable" : (e?.name ?? "Error");
  }
}
console.log("PROBE " + JSON.stringify(out));
Deno.exit(0);
`;
}

function hasLauncher(role: Role): boolean {
  try {
    return Deno.statSync(`${BIN}/${role}`).isFile;
  } catch {
    return false;
  }
}

function parseProbe(res: RunResult, where: string): Record<string, string> {
  const line = res.stdout.split("\n").find((l) => l.startsWith("PROBE "));
  assert.ok(
    line,
    `${where}: probe printed no result (exit ${res.code})\n${res.stdout}\n${res.stderr}`,
  );
  return JSON.parse(line.slice("PROBE ".length));
}

function assertVerdicts(
  results: Record<string, string>,
  expectations: readonly Expectation[],
  where: string,
): void {
  for (const e of expectations) {
    const got = results[e.name];
    if (e.refused) {
      assert.equal(got, "NotCapable", `${where}: "${e.name}" should be refused, got ${got}`);
    } else {
      assert.ok(
        got !== undefined && got !== "NotCapable",
        `${where}: "${e.name}" is needed by the role and must not be refused, got ${got}`,
      );
    }
  }
}

const RUN_FLAGS = ["--no-config", "--cached-only", "--no-prompt"];

/** TEST-NET-1 (192.0.2.1): refused by the sandbox before any packet leaves. */
const OFF_HOST_REFUSED: readonly Expectation[] = [
  {
    name: "fetch a non-loopback host",
    check: { op: "fetch", url: "http://192.0.2.1/" },
    refused: true,
  },
  {
    name: "connect to a non-loopback host",
    check: { op: "connect", hostname: "192.0.2.1", port: 443 },
    refused: true,
  },
];

const OTHER_LOOPBACK_PORT_REFUSED: Expectation = {
  name: "another loopback port",
  check: { op: "connect", hostname: "127.0.0.1", port: 1 },
  refused: true,
};

/** The flags the launcher derives for `role`, computed independently from the table. */
async function derivedFlags(
  role: Role,
  args: readonly string[],
  env: Record<string, string>,
): Promise<string[]> {
  const templates = templatesFor(role);
  const launcher = Deno.readTextFileSync(`${BIN}/${role}`);
  if (!launcher.includes("resolve.js")) {
    // Non-resolving roles: the launcher's shell expands ${VAR:-default}.
    return templates.map((t) =>
      t.replace(/\$\{([A-Z_]+):-([^}]*)\}/g, (_, v: string, d: string) => env[v] || d)
    );
  }
  const res = await run(Deno.execPath(), [
    "run",
    ...RUN_FLAGS,
    "--allow-read",
    "--allow-env",
    `${ROOT}/dist/lib/resolve.js`,
    role,
    String(templates.length),
    ...templates,
    "--",
    ...args,
  ], { env });
  assert.equal(res.code, 0, `resolve.js failed: ${res.stderr}`);
  return res.stdout.split("\n").filter((l) => l !== "");
}

interface ProbeRun {
  /** The permission flags the launcher passed to deno. */
  readonly flags: string[];
  readonly results: Record<string, string>;
}

/**
 * Runs the probe through the real launcher (see the file comment), checks the
 * flags it used against the table, runs the probe again with the derived flags
 * and checks every verdict both times.
 */
async function proveRole(
  role: Role,
  args: readonly string[],
  env: Record<string, string>,
  expectations: readonly Expectation[],
): Promise<ProbeRun> {
  await using dir = tempDir("gcp-gate-probe-");
  const probe = `${dir.path}/probe.js`;
  const record = `${dir.path}/launch.args`;
  Deno.writeTextFileSync(probe, probeSource(expectations));
  const wrapper = `${dir.path}/deno-wrapper`;
  const q = (s: string): string => `'${s.replaceAll("'", `'"'"'`)}'`;
  Deno.writeTextFileSync(
    wrapper,
    [
      "#!/bin/sh",
      "# Test wrapper: pass the resolver through; run the probe instead of the role.",
      `for a in "$@"; do case "$a" in */lib/resolve.js) exec ${
        q(Deno.execPath())
      } "$@";; esac; done`,
      `printf '%s\\n' "$@" > ${q(record)}`,
      "first=1",
      'for a in "$@"; do',
      '  if [ "$first" = 1 ]; then set --; first=0; fi',
      `  case "$a" in */lib/${role}.js) a=${q(probe)};; esac`,
      '  set -- "$@" "$a"',
      "done",
      `exec ${q(Deno.execPath())} "$@"`,
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  Deno.chmodSync(wrapper, 0o755);

  const viaLauncher = await run(role, [...args], { env: { ...env, GCP_GATE_DENO: wrapper } });
  const results = parseProbe(viaLauncher, `${role} launcher`);
  // The command the launcher ran, as it ran it (before the wrapper's substitution).
  const launched = Deno.readTextFileSync(record).split("\n");
  const script = launched.findIndex((a) => a.endsWith(`/lib/${role}.js`));
  assert.ok(script > 0, `${role}: the launcher did not run its bundle:\n${launched.join(" ")}`);
  assert.ok(launched.slice(0, script).includes("--no-prompt"), `${role}: no --no-prompt`);
  // Everything between `run` and the script, but the fixed run flags: the permission flags.
  const flags = launched.slice(1, script).filter((a) => !RUN_FLAGS.includes(a));
  assert.deepEqual(flags, await derivedFlags(role, args, env), `${role}: launcher flags ≠ table`);
  assertVerdicts(results, expectations, `${role} (real launcher)`);

  const direct = await run(Deno.execPath(), ["run", ...RUN_FLAGS, ...flags, probe, ...args], {
    env,
  });
  assert.deepEqual(parseProbe(direct, `${role} derived flags`), results);
  return { flags, results };
}

/** A loopback listener whose port nobody but the test uses. */
function loopbackListener(): Deno.TcpListener & { port: number } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  // Accept and drop, so a permitted connect succeeds instead of hanging.
  void (async () => {
    try {
      for await (const c of l) c.close();
    } catch { /* closed */ }
  })();
  return Object.assign(l, { port: l.addr.port });
}

/** Programs the gate may run: the approval dialogs, by absolute path. */
const DIALOG_PROGRAMS = new Set(["zenity", "kdialog", "osascript"]);

Deno.test({
  name: "least privilege: gcp-gate reaches only its endpoints and runs only dialog programs",
  ignore: !hasLauncher("gcp-gate"),
  fn: async () => {
    await using home = tempDir();
    await using fake = await startFakeGoogle();
    const h = home.path;
    const config = `${h}/gate.toml`;
    Deno.writeTextFileSync(
      config,
      `socket_path = "${h}/run/gcp-gate/gate.sock"\ncredentials_file = "${h}/adc.json"\n${fake.endpointsToml()}`,
    );
    Deno.writeTextFileSync(`${h}/adc.json`, "{}");
    Deno.mkdirSync(`${h}/.ssh`, { recursive: true });
    Deno.writeTextFileSync(`${h}/.ssh/id_ed25519`, "not a key");
    const { flags } = await proveRole("gcp-gate", ["--config", config], baseEnv(h), [
      {
        name: "fetch a configured endpoint",
        check: { op: "fetch", url: `${fake.base}/x` },
        refused: false,
      },
      { name: "read its config", check: { op: "read", path: config }, refused: false },
      { name: "read the ADC file", check: { op: "read", path: `${h}/adc.json` }, refused: false },
      ...OFF_HOST_REFUSED,
      {
        name: "fetch Google directly",
        check: { op: "fetch", url: "https://www.googleapis.com/" },
        refused: true,
      },
      OTHER_LOOPBACK_PORT_REFUSED,
      {
        name: "metadata server by IP",
        check: { op: "fetch", url: "http://169.254.169.254/computeMetadata/v1/" },
        refused: true,
      },
      {
        name: "metadata server by name",
        check: { op: "fetch", url: "http://metadata.google.internal/computeMetadata/v1/" },
        refused: true,
      },
      { name: "run a shell", check: { op: "run", cmd: "/bin/sh" }, refused: true },
      { name: "run sh from PATH", check: { op: "run", cmd: "sh" }, refused: true },
      { name: "run gcloud", check: { op: "run", cmd: "gcloud" }, refused: true },
      { name: "read ~/.ssh", check: { op: "read", path: `${h}/.ssh/id_ed25519` }, refused: true },
      {
        name: "write outside its dirs",
        check: { op: "write", path: `${h}/planted` },
        refused: true,
      },
    ]);
    // Whatever --allow-run the approval chain needs: absolute paths of dialog programs only.
    for (const f of flags.filter((x) => x.startsWith("--allow-run"))) {
      assert.ok(f.includes("="), `gcp-gate must not get an unscoped ${f}`);
      for (const p of f.slice(f.indexOf("=") + 1).split(",")) {
        assert.ok(p.startsWith("/"), `--allow-run scope ${p} must be absolute (PATH hijack)`);
        assert.ok(DIALOG_PROGRAMS.has(p.slice(p.lastIndexOf("/") + 1)), `gate may run ${p}`);
      }
    }
    assert.ok(flags.some((f) => f.startsWith("--deny-net=") && f.includes("169.254.169.254")));
  },
});

Deno.test({
  name: "least privilege: the real gate refuses a metadata-server endpoint even when configured",
  ignore: !hasLauncher("gcp-gate"),
  fn: async () => {
    // The gate's own code, not a probe: point IAM at 169.254.169.254 by
    // mistake; --deny-net must win over the resolved --allow-net.
    await using home = tempDir();
    await using fake = await startFakeGoogle();
    const h = home.path;
    const e = fake.endpoints();
    Deno.mkdirSync(`${h}/run`, { mode: 0o700 });
    Deno.writeTextFileSync(`${h}/adc.json`, fake.adcJson(), { mode: 0o600 });
    const socketPath = `${h}/run/gcp-gate/gate.sock`;
    const config = `${h}/gate.toml`;
    Deno.writeTextFileSync(
      config,
      [
        `service_account = "${DEV_SA}"`,
        `socket_path = "${socketPath}"`,
        `credentials_file = "${h}/adc.json"`,
        "[endpoints]",
        `oauth2 = "${e.oauth2}"`,
        `iamcredentials = "http://169.254.169.254"`,
        `cloudresourcemanager = "${e.cloudresourcemanager}"`,
        `sts = "${e.sts}"`,
      ].join("\n"),
    );
    // An HTTP proxy on loopback catches the request if the sandbox let it
    // through (fetch honours HTTP_PROXY; Deno checks the TARGET host), so a
    // missing --deny-net fails this test without a packet leaving the host.
    const leaked: string[] = [];
    await using catcher = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req) => {
        leaked.push(req.url);
        return new Response("caught by the test proxy", { status: 502 });
      },
    );
    const env = baseEnv(h, {
      HTTP_PROXY: `http://127.0.0.1:${catcher.addr.port}`,
      NO_PROXY: "127.0.0.1,localhost",
    });
    await using gate = await start("gcp-gate", ["--config", config], {
      env,
      ready: /ready: listening on/,
    });
    const client = createGateClient({ socketPath, timeoutMs: 10_000 });
    try {
      await assert.rejects(client.token(), (err: Error) => {
        assert.match(err.message, /169\.254\.169\.254/, gate.output());
        return true;
      });
    } finally {
      client.close();
    }
    assert.deepEqual(leaked, [], "the gate's request to 169.254.169.254 left the sandbox");
    assert.ok(
      fake.count(/POST \/oauth2\/token$/) >= 1,
      "the gate never refreshed its source token",
    );
    assert.equal(fake.count(/generateAccessToken/), 0);
  },
});

Deno.test({
  name: "least privilege: gcp-gate audit only reads its config and the audit directory",
  ignore: !hasLauncher("gcp-gate"),
  fn: async () => {
    await using home = tempDir();
    await using fake = await startFakeGoogle();
    const h = home.path;
    const config = `${h}/gate.toml`;
    const auditDir = `${h}/state/gcp-gate`;
    Deno.mkdirSync(auditDir, { recursive: true });
    Deno.writeTextFileSync(`${auditDir}/audit.log`, "{}\n");
    Deno.writeTextFileSync(`${h}/adc.json`, "{}");
    Deno.writeTextFileSync(
      config,
      `socket_path = "${h}/run/gcp-gate/gate.sock"\ncredentials_file = "${h}/adc.json"\naudit_log = "${auditDir}/audit.log"\n${fake.endpointsToml()}`,
    );
    for (const args of [["audit"], ["audit", "verify"]]) {
      const { flags } = await proveRole("gcp-gate", [...args, "--config", config], baseEnv(h), [
        { name: "read its config", check: { op: "read", path: config }, refused: false },
        {
          name: "read the audit log",
          check: { op: "read", path: `${auditDir}/audit.log` },
          refused: false,
        },
        { name: "list the audit dir", check: { op: "readDir", path: auditDir }, refused: false },
        {
          name: "write into the audit dir",
          check: { op: "write", path: `${auditDir}/audit.log.head` },
          refused: true,
        },
        { name: "read the ADC file", check: { op: "read", path: `${h}/adc.json` }, refused: true },
        {
          name: "fetch a configured endpoint",
          check: { op: "fetch", url: `${fake.base}/x` },
          refused: true,
        },
        ...OFF_HOST_REFUSED,
        { name: "run a shell", check: { op: "run", cmd: "/bin/sh" }, refused: true },
        { name: "run zenity", check: { op: "run", cmd: "/usr/bin/zenity" }, refused: true },
      ]);
      for (const f of ["--allow-write", "--allow-net", "--allow-run"]) {
        assert.ok(!flags.some((x) => x.startsWith(f)), `gcp-gate ${args.join(" ")} got ${f}`);
      }
    }
  },
});

Deno.test({
  name:
    "least privilege: gcp-metadata-proxy cannot read gcloud's dir, leave loopback or run programs",
  ignore: !hasLauncher("gcp-metadata-proxy"),
  fn: async () => {
    await using home = tempDir();
    const h = home.path;
    const config = `${h}/proxy.toml`;
    Deno.writeTextFileSync(config, `socket_path = "${h}/run/gcp-gate/gate.sock"\nport = 0\n`);
    Deno.mkdirSync(`${h}/.config/gcloud`, { recursive: true });
    const adc = `${h}/.config/gcloud/application_default_credentials.json`;
    Deno.writeTextFileSync(adc, "{}");
    const env = baseEnv(h, { GOOGLE_APPLICATION_CREDENTIALS: adc });
    await proveRole("gcp-metadata-proxy", ["--config", config], env, [
      { name: "read its config", check: { op: "read", path: config }, refused: false },
      {
        name: "listen on its loopback port",
        check: { op: "listen", hostname: "127.0.0.1", port: 0 },
        refused: false,
      },
      { name: "read gcloud's ADC file", check: { op: "read", path: adc }, refused: true },
      {
        name: "list ~/.config/gcloud",
        check: { op: "readDir", path: `${h}/.config/gcloud` },
        refused: true,
      },
      { name: "read /etc/passwd", check: { op: "read", path: "/etc/passwd" }, refused: true },
      { name: "write into HOME", check: { op: "write", path: `${h}/planted` }, refused: true },
      {
        name: "list its socket directory (stat owner and mode)",
        check: { op: "readDir", path: `${h}/run/gcp-gate` },
        refused: false,
      },
      {
        name: "create a file beside the gate socket",
        check: { op: "write", path: `${h}/run/gcp-gate/planted.sock` },
        refused: true,
      },
      ...OFF_HOST_REFUSED,
      {
        name: "fetch Google",
        check: { op: "fetch", url: "https://oauth2.googleapis.com/token" },
        refused: true,
      },
      OTHER_LOOPBACK_PORT_REFUSED,
      { name: "run a shell", check: { op: "run", cmd: "/bin/sh" }, refused: true },
      { name: "run gcloud", check: { op: "run", cmd: "gcloud" }, refused: true },
      {
        name: "read GOOGLE_APPLICATION_CREDENTIALS",
        check: { op: "env", name: "GOOGLE_APPLICATION_CREDENTIALS" },
        refused: true,
      },
    ]);
  },
});

Deno.test({
  name: "least privilege: the real proxy serves a token using only its socket and loopback port",
  ignore: !hasLauncher("gcp-metadata-proxy") || !hasLauncher("gcp-gate"),
  fn: async () => {
    // DENO_AUDIT_PERMISSIONS logs every permission check of the real proxy
    // (and of its launcher's resolver step): evidence of what it touches.
    await using stack = await startStack({ proxy: false });
    const audit = `${stack.home}/proxy-audit.jsonl`;
    const env = baseEnv(stack.home, { DENO_AUDIT_PERMISSIONS: audit });
    const ready = /listening on http:\/\/(127\.0\.0\.1:\d+)/;
    await using proxy = await start(
      "gcp-metadata-proxy",
      ["--config", stack.configPath, "--port", "0"],
      { env, ready },
    );
    const hostPort = (await proxy.waitFor(ready))[1];
    const res = await fetch(
      `http://${hostPort}/computeMetadata/v1/instance/service-accounts/default/token`,
      { headers: { "Metadata-Flavor": "Google" } },
    );
    await res.body?.cancel();
    assert.equal(res.status, 200, proxy.output());
    const uses = Deno.readTextFileSync(audit).split("\n").filter((l) => l).map((l) =>
      JSON.parse(l) as { permission: string; value: string | null }
    );
    assert.ok(uses.some((u) => u.permission === "net"), "the audit log recorded nothing");
    for (const u of uses) {
      if (u.permission === "net") {
        assert.match(
          String(u.value),
          /^(127\.0\.0\.1:\d+|unix:.*|gate\.invalid(:80)?|http:\/\/gate\.invalid\/.*|.*\/gate\.sock)$/,
          `proxy touched ${u.value}`,
        );
      }
      assert.doesNotMatch(String(u.value), /\.config\/gcloud/, `proxy touched ${u.value}`);
      assert.ok(u.permission !== "run", `proxy ran ${u.value}`);
    }
  },
});

Deno.test({
  name: "least privilege: gcp-kube-token cannot read or write any file",
  ignore: !hasLauncher("gcp-kube-token"),
  fn: async () => {
    await using home = tempDir();
    const h = home.path;
    Deno.mkdirSync(`${h}/.kube`);
    Deno.writeTextFileSync(`${h}/.kube/config`, "apiVersion: v1\n");
    const metadata = loopbackListener();
    try {
      const env = baseEnv(h, { GCE_METADATA_HOST: `127.0.0.1:${metadata.port}` });
      await proveRole("gcp-kube-token", [], env, [
        {
          name: "read GCE_METADATA_HOST",
          check: { op: "env", name: "GCE_METADATA_HOST" },
          refused: false,
        },
        {
          name: "connect to the metadata server",
          check: { op: "connect", hostname: "127.0.0.1", port: metadata.port },
          refused: false,
        },
        {
          name: "read the kubeconfig",
          check: { op: "read", path: `${h}/.kube/config` },
          refused: true,
        },
        { name: "read /etc/hostname", check: { op: "read", path: "/etc/hostname" }, refused: true },
        { name: "list /", check: { op: "readDir", path: "/" }, refused: true },
        { name: "write a file", check: { op: "write", path: `${h}/planted` }, refused: true },
        {
          name: "write /tmp",
          check: { op: "write", path: `/tmp/gcp-gate-probe-${crypto.randomUUID()}` },
          refused: true,
        },
        {
          name: "fetch a non-loopback host",
          check: { op: "fetch", url: "http://192.0.2.1/" },
          refused: true,
        },
        { name: "run a shell", check: { op: "run", cmd: "/bin/sh" }, refused: true },
        { name: "read HOME", check: { op: "env", name: "HOME" }, refused: true },
      ]);
    } finally {
      metadata.close();
    }
  },
});

Deno.test({
  name: "least privilege: gcp-kube-setup cannot use the network",
  ignore: !hasLauncher("gcp-kube-setup"),
  fn: async () => {
    await using home = tempDir();
    const h = home.path;
    Deno.mkdirSync(`${h}/.kube`);
    Deno.writeTextFileSync(`${h}/.kube/config`, "apiVersion: v1\n");
    Deno.mkdirSync(`${h}/.config/gcloud`, { recursive: true });
    Deno.writeTextFileSync(`${h}/.config/gcloud/application_default_credentials.json`, "{}");
    const local = loopbackListener();
    try {
      await proveRole("gcp-kube-setup", [], baseEnv(h), [
        {
          name: "read the kubeconfig",
          check: { op: "read", path: `${h}/.kube/config` },
          refused: false,
        },
        {
          name: "fetch a non-loopback host",
          check: { op: "fetch", url: "http://192.0.2.1/" },
          refused: true,
        },
        {
          name: "connect to a non-loopback host",
          check: { op: "connect", hostname: "192.0.2.1", port: 443 },
          refused: true,
        },
        {
          name: "connect to loopback",
          check: { op: "connect", hostname: "127.0.0.1", port: local.port },
          refused: true,
        },
        { name: "listen", check: { op: "listen", hostname: "127.0.0.1", port: 0 }, refused: true },
        {
          name: "read gcloud's ADC file",
          check: { op: "read", path: `${h}/.config/gcloud/application_default_credentials.json` },
          refused: true,
        },
        { name: "run a shell", check: { op: "run", cmd: "/bin/sh" }, refused: true },
      ]);
    } finally {
      local.close();
    }
  },
});

Deno.test("least privilege: with-prod is --allow-all by design, and the table says why", () => {
  // Reading /proc (to map a connection to its process) needs --allow-all in
  // Deno; the README's permission table states it. No refusal test exists for it.
  assert.deepEqual(templatesFor("with-prod"), ["--allow-all"]);
});

Deno.test({
  name:
    "least privilege: gcp-gate doctor may read (never write) its service file; the daemon may not",
  ignore: !hasLauncher("gcp-gate") || Deno.build.os !== "linux",
  fn: async () => {
    await using home = tempDir();
    const h = home.path;
    const config = `${h}/gate.toml`;
    Deno.writeTextFileSync(config, `socket_path = "${h}/run/gcp-gate/gate.sock"\n`);
    const unit = `${h}/.config/systemd/user/gcp-gate.service`;
    Deno.mkdirSync(`${h}/.config/systemd/user`, { recursive: true });
    Deno.writeTextFileSync(unit, "[Service]\n");
    const checks = (readable: boolean): Expectation[] => [
      { name: "read its service file", check: { op: "read", path: unit }, refused: !readable },
      { name: "write its service file", check: { op: "write", path: unit }, refused: true },
      {
        name: "write beside the service file",
        check: { op: "write", path: `${h}/.config/systemd/user/other.service` },
        refused: true,
      },
      { name: "read ~/.config", check: { op: "readDir", path: `${h}/.config` }, refused: true },
      ...OFF_HOST_REFUSED,
      { name: "run systemctl", check: { op: "run", cmd: "/usr/bin/systemctl" }, refused: true },
    ];
    const { flags } = await proveRole("gcp-gate", ["doctor", "--config", config], baseEnv(h), [
      ...checks(true),
    ]);
    assert.ok(flags.some((f) => f.startsWith("--allow-read=") && f.includes(unit)));
    const daemon = await proveRole("gcp-gate", ["--config", config], baseEnv(h), checks(false));
    assert.ok(!daemon.flags.some((f) => f.includes(unit)), "the daemon got its unit file");
  },
});

Deno.test({
  name:
    "least privilege: gcp-metadata-proxy doctor reads HOME and probes its hosts; the proxy itself gets neither",
  ignore: !hasLauncher("gcp-metadata-proxy"),
  fn: async () => {
    await using home = tempDir();
    const h = home.path;
    const probe = loopbackListener();
    try {
      const config = `${h}/proxy.toml`;
      Deno.writeTextFileSync(
        config,
        `socket_path = "${h}/run/gcp-gate/gate.sock"\nport = 0\ndoctor_metadata_probe_hosts = "127.0.0.1:${probe.port}"\n`,
      );
      Deno.mkdirSync(`${h}/.config/gcloud`, { recursive: true });
      const adc = `${h}/.config/gcloud/application_default_credentials.json`;
      Deno.writeTextFileSync(adc, "{}");
      const env = baseEnv(h, { GOOGLE_APPLICATION_CREDENTIALS: adc });
      const shared: Expectation[] = [
        { name: "read its config", check: { op: "read", path: config }, refused: false },
        { name: "read /etc/passwd", check: { op: "read", path: "/etc/passwd" }, refused: true },
        { name: "write into HOME", check: { op: "write", path: `${h}/planted` }, refused: true },
        ...OFF_HOST_REFUSED,
        OTHER_LOOPBACK_PORT_REFUSED,
        {
          name: "fetch Google",
          check: { op: "fetch", url: "https://oauth2.googleapis.com/token" },
          refused: true,
        },
        { name: "run a shell", check: { op: "run", cmd: "/bin/sh" }, refused: true },
        { name: "read PATH", check: { op: "env", name: "PATH" }, refused: true },
      ];
      const doctorOnly = (granted: boolean): Expectation[] => [
        { name: "read gcloud's ADC file", check: { op: "read", path: adc }, refused: !granted },
        { name: "list HOME", check: { op: "readDir", path: h }, refused: !granted },
        {
          name: "connect to a probe host",
          check: { op: "connect", hostname: "127.0.0.1", port: probe.port },
          refused: !granted,
        },
        {
          name: "read GOOGLE_APPLICATION_CREDENTIALS",
          check: { op: "env", name: "GOOGLE_APPLICATION_CREDENTIALS" },
          refused: !granted,
        },
      ];
      const doctor = await proveRole("gcp-metadata-proxy", ["doctor", "--config", config], env, [
        ...shared,
        ...doctorOnly(true),
      ]);
      assert.ok(doctor.flags.includes("--allow-sys=uid"), doctor.flags.join(" "));
      const daemon = await proveRole("gcp-metadata-proxy", ["--config", config], env, [
        ...shared,
        ...doctorOnly(false),
      ]);
      // The proxy itself knows its uid too (it refuses a socket planted by another user).
      assert.ok(daemon.flags.includes("--allow-sys=uid"), daemon.flags.join(" "));
      assert.ok(!daemon.flags.some((f) => f.includes(`${probe.port}`)), daemon.flags.join(" "));
    } finally {
      probe.close();
    }
  },
});

Deno.test({
  name:
    "least privilege: an executable credential source is the one extra program the gate may run, and only with the opt-in",
  ignore: !hasLauncher("gcp-gate"),
  fn: async () => {
    await using home = tempDir();
    await using fake = await startFakeGoogle();
    const h = home.path;
    const program = `${h}/bin/spire-agent`;
    const other = `${h}/bin/other-tool`;
    Deno.mkdirSync(`${h}/bin`);
    for (const p of [program, other]) {
      Deno.writeTextFileSync(p, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
      Deno.chmodSync(p, 0o755);
    }
    Deno.writeTextFileSync(
      `${h}/adc.json`,
      JSON.stringify({
        type: "external_account",
        audience:
          "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x",
        subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
        credential_source: { executable: { command: `${program} api fetch jwt` } },
      }),
    );
    const config = `${h}/gate.toml`;
    Deno.writeTextFileSync(
      config,
      `socket_path = "${h}/run/gcp-gate/gate.sock"\ncredentials_file = "${h}/adc.json"\n${fake.endpointsToml()}`,
    );
    const refusedOthers: Expectation[] = [
      { name: "run another program beside it", check: { op: "run", cmd: other }, refused: true },
      { name: "run a shell", check: { op: "run", cmd: "/bin/sh" }, refused: true },
      { name: "run sh from PATH", check: { op: "run", cmd: "sh" }, refused: true },
      { name: "run env", check: { op: "run", cmd: "/usr/bin/env" }, refused: true },
    ];
    const optIn = baseEnv(h, { GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES: "1" });
    const { flags } = await proveRole("gcp-gate", ["--config", config], optIn, [
      { name: "run the credential program", check: { op: "run", cmd: program }, refused: false },
      ...refusedOthers,
    ]);
    const run = flags.find((f) => f.startsWith("--allow-run="))!.slice("--allow-run=".length);
    for (const p of run.split(",")) {
      assert.ok(
        p === program || DIALOG_PROGRAMS.has(p.slice(p.lastIndexOf("/") + 1)),
        `gate may run ${p}`,
      );
    }
    // Without Google's opt-in, the launcher grants the program nothing.
    await proveRole("gcp-gate", ["--config", config], baseEnv(h), [
      { name: "run the credential program", check: { op: "run", cmd: program }, refused: true },
      ...refusedOthers,
    ]);
  },
});

Deno.test({
  name:
    "least privilege: inspection APIs are reachable by accounts/can only, and can by its resource's API only",
  ignore: !hasLauncher("gcp-gate"),
  fn: async () => {
    await using home = tempDir();
    await using fake = await startFakeGoogle();
    const h = home.path;
    const storage = loopbackListener();
    const pubsub = loopbackListener();
    try {
      const config = `${h}/gate.toml`;
      Deno.writeTextFileSync(`${h}/adc.json`, fake.adcJson());
      Deno.writeTextFileSync(
        config,
        `socket_path = "${h}/run/gcp-gate/gate.sock"\ncredentials_file = "${h}/adc.json"\n${fake.endpointsToml()}` +
          `storage = "http://127.0.0.1:${storage.port}"\npubsub = "http://127.0.0.1:${pubsub.port}"\n`,
      );
      const connect = (name: string, port: number, refused: boolean): Expectation => ({
        name,
        check: { op: "connect", hostname: "127.0.0.1", port },
        refused,
      });
      const bucket = "//storage.googleapis.com/projects/_/buckets/b";
      await proveRole("gcp-gate", ["--config", config], baseEnv(h), [
        connect("the daemon reaches Storage", storage.port, true),
        connect("the daemon reaches Pub/Sub", pubsub.port, true),
        {
          name: "fetch a core endpoint",
          check: { op: "fetch", url: `${fake.base}/x` },
          refused: false,
        },
      ]);
      await proveRole(
        "gcp-gate",
        ["can", "storage.objects.get", "--resource", bucket, "--config", config],
        baseEnv(h),
        [
          connect("can on a bucket reaches Storage", storage.port, false),
          connect("can on a bucket reaches Pub/Sub", pubsub.port, true),
        ],
      );
      await proveRole("gcp-gate", ["accounts", "--config", config], baseEnv(h), [
        connect("accounts reaches Storage", storage.port, true),
        connect("accounts reaches Pub/Sub", pubsub.port, true),
      ]);
    } finally {
      storage.close();
      pubsub.close();
    }
  },
});
