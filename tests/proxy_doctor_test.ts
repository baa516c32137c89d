/**
 * `gcp-metadata-proxy doctor` through the built launcher, with a real gate and
 * proxy on the fake Google, run as a container would: its own HOME, the
 * GCE_METADATA_* variables, the gate socket path. Each check made to PASS and
 * to WARN/FAIL; no token or credential value in any output.
 */
import assert from "node:assert/strict";
import { assertNoSecrets, baseEnv, run, type Stack, startStack, tempDir } from "./_utils.ts";

interface CheckLine {
  id: string;
  status: string;
  message: string;
  fix?: string;
}

interface Doctor {
  code: number;
  text: string;
  checks: CheckLine[];
  check(id: string): CheckLine;
}

/** A loopback port nothing listens on (bound, then closed). */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

interface DoctorRun {
  /** The container's HOME (not the gate's). */
  home: string;
  env?: Record<string, string>;
  /** Replaces the GCE_METADATA_* variables (all three by default point at the proxy). */
  metadataEnv?: Record<string, string>;
  args?: string[];
  /** Where doctor looks for another metadata server (default: a closed loopback port). */
  probeHosts?: string;
  /** The proxy's host:port (default: the stack's proxy). */
  proxyHostPort?: string;
}

async function doctor(stack: Stack, opts: DoctorRun): Promise<Doctor> {
  const hp = opts.proxyHostPort ?? stack.proxyHostPort!;
  const metadata = opts.metadataEnv ?? {
    GCE_METADATA_HOST: hp,
    GCE_METADATA_IP: hp,
    GCE_METADATA_ROOT: hp,
  };
  const env = baseEnv(opts.home, { ...metadata, ...opts.env });
  const args = [
    "doctor",
    "--json",
    "--config",
    stack.configPath,
    "--port",
    hp.split(":")[1]!,
    "--doctor-metadata-probe-hosts",
    opts.probeHosts ?? `127.0.0.1:${closedPort()}`,
    ...(opts.args ?? []),
  ];
  const res = await run("gcp-metadata-proxy", args, { env });
  const text = `${res.stdout}\n${res.stderr}`;
  assertNoSecrets(text, stack.fake, "gcp-metadata-proxy doctor output");
  let checks: CheckLine[];
  try {
    checks = JSON.parse(res.stdout).checks;
  } catch {
    throw new Error(`doctor printed no JSON (exit ${res.code}):\n${text}`);
  }
  return {
    code: res.code,
    text,
    checks,
    check(id) {
      const c = checks.find((x) => x.id === id);
      assert.ok(c, `no check ${id}:\n${text}`);
      return c;
    },
  };
}

Deno.test("proxy doctor: a clean container with a live gate and proxy passes, exit 0", async () => {
  await using stack = await startStack();
  await using home = tempDir();
  const d = await doctor(stack, { home: home.path });
  assert.deepEqual(d.checks.filter((c) => c.status !== "PASS"), [], d.text);
  assert.equal(d.code, 0);
  assert.match(d.check("token").message, /of dev@demo-project\.iam\.gserviceaccount\.com/);
  assert.match(d.check("token").message, /valid (59|60) min/);
  assert.match(d.check("gate-protocol").message, /protocol 1/);
});

Deno.test("proxy doctor: GCE_METADATA_* unset, partial, with a scheme, inconsistent or elsewhere", async () => {
  await using stack = await startStack();
  await using home = tempDir();
  const hp = stack.proxyHostPort!;
  const cases: [Record<string, string>, string, RegExp][] = [
    [{}, "FAIL", /are unset/],
    [{ GCE_METADATA_HOST: hp }, "FAIL", /GCE_METADATA_IP, GCE_METADATA_ROOT unset/],
    [
      { GCE_METADATA_HOST: `http://${hp}`, GCE_METADATA_IP: hp, GCE_METADATA_ROOT: hp },
      "FAIL",
      /scheme/,
    ],
    [
      { GCE_METADATA_HOST: hp, GCE_METADATA_IP: hp, GCE_METADATA_ROOT: "127.0.0.1:1" },
      "FAIL",
      /disagree/,
    ],
    [
      {
        GCE_METADATA_HOST: "127.0.0.1:1",
        GCE_METADATA_IP: "127.0.0.1:1",
        GCE_METADATA_ROOT: "127.0.0.1:1",
      },
      "WARN",
      /configured for/,
    ],
  ];
  for (const [metadataEnv, status, re] of cases) {
    const d = await doctor(stack, { home: home.path, metadataEnv });
    const c = d.check("metadata-env");
    assert.equal(c.status, status, d.text);
    assert.match(c.message, re);
    assert.match(c.fix!, /gcp-metadata-proxy env/);
  }
});

Deno.test("proxy doctor: an HTTP proxy without NO_PROXY=127.0.0.1 warns", async () => {
  await using stack = await startStack();
  await using home = tempDir();
  const d = await doctor(stack, { home: home.path, env: { HTTP_PROXY: "http://192.0.2.1:3128" } });
  assert.equal(d.check("no-proxy").status, "WARN", d.text);
  assert.equal(d.code, 3);
});

Deno.test("proxy doctor: a gate socket open to others fails with the host-side chmod", async () => {
  await using stack = await startStack();
  await using home = tempDir();
  Deno.chmodSync(stack.socketPath, 0o666);
  const d = await doctor(stack, { home: home.path });
  const c = d.check("gate-socket");
  assert.equal(c.status, "FAIL", d.text);
  assert.match(c.message, /mode 666/);
  assert.equal(c.fix, `on the host: chmod 600 ${stack.socketPath}`);
  assert.equal(d.code, 1);
});

Deno.test("proxy doctor: no gate socket fails the socket and protocol checks, token from nowhere", async () => {
  await using stack = await startStack({ proxy: false });
  await using home = tempDir();
  const d = await doctor(
    stack,
    {
      home: home.path,
      proxyHostPort: `127.0.0.1:${closedPort()}`,
      args: ["--socket-path", `${home.path}/nowhere/gate.sock`],
    },
  );
  assert.equal(d.check("gate-socket").status, "FAIL", d.text);
  assert.match(d.check("gate-socket").fix!, /readonly/);
  assert.equal(d.check("gate-protocol").status, "FAIL");
  assert.equal(d.check("proxy-listening").status, "FAIL");
  assert.match(d.check("proxy-listening").fix!, /gcp-metadata-proxy/);
  assert.equal(d.check("token").status, "FAIL");
});

Deno.test("proxy doctor: a gate speaking another protocol version fails", async () => {
  await using stack = await startStack();
  await using home = tempDir();
  const dir = `${home.path}/sock`;
  Deno.mkdirSync(dir, { mode: 0o700 });
  Deno.chmodSync(dir, 0o700);
  const path = `${dir}/gate.sock`;
  const ac = new AbortController();
  const server = Deno.serve(
    { path, signal: ac.signal, onListen: () => {} },
    () => Response.json({ status: "ok", uptime_seconds: 1, version: "9.9.9", protocol: 2 }),
  );
  try {
    Deno.chmodSync(path, 0o600);
    const d = await doctor(stack, { home: home.path, args: ["--socket-path", path] });
    const c = d.check("gate-protocol");
    assert.equal(c.status, "FAIL", d.text);
    assert.match(c.message, /protocol 2, this proxy 1/);
  } finally {
    ac.abort();
    await server.finished;
  }
});

Deno.test("proxy doctor: proxy not listening warns that only the gate gives tokens", async () => {
  await using stack = await startStack({ proxy: false });
  await using home = tempDir();
  const port = closedPort();
  const d = await doctor(stack, {
    home: home.path,
    proxyHostPort: `127.0.0.1:${port}`,
  });
  assert.equal(d.check("gate-protocol").status, "PASS", d.text);
  assert.equal(d.check("proxy-listening").status, "FAIL");
  const t = d.check("token");
  assert.equal(t.status, "WARN");
  assert.match(t.message, /access token \(Bearer\) valid/);
});

Deno.test("proxy doctor: another program on the proxy's port fails", async () => {
  await using stack = await startStack({ proxy: false });
  await using home = tempDir();
  await using other = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("hello"),
  );
  const d = await doctor(stack, {
    home: home.path,
    proxyHostPort: `127.0.0.1:${other.addr.port}`,
  });
  assert.equal(d.check("proxy-listening").status, "FAIL", d.text);
  assert.match(d.check("proxy-listening").message, /another program holds the port/);
});

Deno.test("proxy doctor: an expired ADC on the host fails the token check", async () => {
  await using stack = await startStack();
  await using home = tempDir();
  stack.fake.revokeRefreshToken();
  const d = await doctor(stack, { home: home.path });
  const t = d.check("token");
  assert.equal(t.status, "FAIL", d.text);
  assert.match(t.message, /gcloud auth application-default login/);
});

Deno.test("proxy doctor: a reachable metadata server (loopback stand-in) warns how to block it", async () => {
  await using stack = await startStack();
  await using home = tempDir();
  let asked = 0;
  await using metadata = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    asked++;
    return new Response("instance/\nproject/\n", { headers: { "Metadata-Flavor": "Google" } });
  });
  const d = await doctor(stack, {
    home: home.path,
    probeHosts: `127.0.0.1:${metadata.addr.port},127.0.0.1:${closedPort()}`,
  });
  const c = d.check("metadata-bypass");
  assert.equal(c.status, "WARN", d.text);
  assert.match(c.message, new RegExp(`answers at 127\\.0\\.0\\.1:${metadata.addr.port}`));
  assert.match(c.fix!, /iptables -I DOCKER-USER -d 127\.0\.0\.1\/32 -j REJECT/);
  assert.equal(asked, 1);
  assert.equal(d.code, 3);
});

Deno.test("proxy doctor: credential variables fail or warn by name, never by value", async () => {
  await using stack = await startStack();
  await using home = tempDir();
  const value = "ya29.FAKE-value-that-must-not-print";
  const d = await doctor(stack, {
    home: home.path,
    env: {
      GOOGLE_APPLICATION_CREDENTIALS: "/secret/key.json",
      GOOGLE_API_KEY: value,
      CLOUDSDK_AUTH_ACCESS_TOKEN_FILE: "/secret/token",
    },
  });
  const envChecks = d.checks.filter((c) => c.id === "credential-env");
  assert.deepEqual(envChecks.map((c) => c.status), ["FAIL", "WARN"], d.text);
  assert.match(envChecks[1]!.message, /GOOGLE_API_KEY/);
  assert.equal(d.check("cloudsdk-auth-env").status, "WARN");
  assert.match(d.check("cloudsdk-auth-env").fix!, /unset CLOUDSDK_AUTH_ACCESS_TOKEN_FILE/);
  assert.ok(!d.text.includes(value) && !d.text.includes("/secret/"), d.text);
  assert.equal(d.code, 1);
});

Deno.test("proxy doctor: gcloud's ADC file and credential store in the container HOME", async () => {
  await using stack = await startStack();
  await using home = tempDir();
  const gcloud = `${home.path}/.config/gcloud`;
  Deno.mkdirSync(`${gcloud}/legacy_credentials/me@example.com`, { recursive: true });
  Deno.writeTextFileSync(`${gcloud}/application_default_credentials.json`, stack.fake.adcJson());
  Deno.writeTextFileSync(`${gcloud}/credentials.db`, "");
  const d = await doctor(stack, { home: home.path });
  assert.equal(d.check("adc-file").status, "FAIL", d.text);
  assert.equal(
    d.check("adc-file").fix,
    `rm ${gcloud}/application_default_credentials.json (if it is mounted from the host, remove that mount instead)`,
  );
  const store = d.check("gcloud-credentials");
  assert.equal(store.status, "WARN");
  assert.match(store.message, /credentials\.db.*legacy_credentials/);
});

Deno.test("proxy doctor: key files in HOME are found within bounds, symlinks not followed", async () => {
  await using stack = await startStack();
  await using home = tempDir();
  await using outside = tempDir();
  const h = home.path;
  const key = JSON.stringify({
    type: "service_account",
    client_email: "k@p.iam.gserviceaccount.com",
    private_key: "-----BEGIN PRIVATE KEY-----\nFAKE\n-----END PRIVATE KEY-----\n",
  });
  Deno.writeTextFileSync(`${outside.path}/key.json`, key);
  Deno.symlinkSync(outside.path, `${h}/linked`);
  Deno.writeTextFileSync(`${h}/package.json`, '{"type": "module"}');
  let d = await doctor(stack, { home: h });
  assert.equal(d.check("key-files").status, "PASS", d.text);
  Deno.mkdirSync(`${h}/work/keys`, { recursive: true });
  Deno.writeTextFileSync(`${h}/work/keys/proj-0123456789ab.json`, key);
  Deno.mkdirSync(`${h}/a/b/c/d/e`, { recursive: true });
  Deno.writeTextFileSync(`${h}/a/b/c/d/e/too-deep.json`, key);
  d = await doctor(stack, { home: h });
  const c = d.check("key-files");
  assert.equal(c.status, "WARN", d.text);
  assert.match(c.message, /^1 Google credential file .*work\/keys\/proj-0123456789ab\.json$/);
  assert.doesNotMatch(d.text, /BEGIN PRIVATE KEY|FAKE\\n/);
});
