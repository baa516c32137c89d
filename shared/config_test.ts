import assert from "node:assert/strict";
import {
  type CliSpec,
  CONFIG_SCHEMA,
  type ConfigKey,
  envName,
  envNamesFor,
  flagName,
  helpText,
  type Invocation,
  type LoadConfigDeps,
  loadInvocation,
  MAX_SOCKET_PATH_BYTES,
} from "./config.ts";
import { GateError } from "./errors.ts";

const TESTDATA = new URL("./testdata/", import.meta.url).pathname;

const PROXY: CliSpec = {
  role: "gcp-metadata-proxy",
  summary: "test",
  usage: ["[options]"],
  positionals: true,
  loadsConfig: true,
};
const GATE: CliSpec = { ...PROXY, role: "gcp-gate" };

function deps(
  env: Record<string, string> = {},
  files: Record<string, string> = {},
): LoadConfigDeps {
  return {
    env: (name) => env[name],
    readTextFile: (path) => {
      if (path in files) return files[path];
      try {
        return Deno.readTextFileSync(path);
      } catch {
        return undefined;
      }
    },
    cwd: () => "/work/cwd",
  };
}

function load(spec: CliSpec, args: string[], env: Record<string, string> = {}): Invocation {
  return loadInvocation(spec, args, deps({ HOME: "/home/u", ...env }));
}

function loadError(spec: CliSpec, args: string[], env: Record<string, string> = {}): GateError {
  try {
    load(spec, args, env);
  } catch (err) {
    assert.ok(err instanceof GateError, `expected GateError, got ${err}`);
    return err;
  }
  assert.fail("expected an error");
}

Deno.test("loadInvocation() applies defaults when nothing is given", () => {
  const { config } = load(PROXY, [], { XDG_RUNTIME_DIR: "/run/user/1000" });
  assert.equal(config.port, 8173);
  assert.equal(config.socket_path, "/run/user/1000/gcp-gate/gate.sock");
  assert.equal(config.config_file, undefined);
  assert.equal(config.config_path, "/home/u/.config/gcp-gate/config.toml");
  assert.equal(config.endpoints.oauth2, "https://oauth2.googleapis.com");
});

Deno.test("loadInvocation() falls back to ~/.gcp-gate without XDG_RUNTIME_DIR", () => {
  assert.equal(load(PROXY, []).config.socket_path, "/home/u/.gcp-gate/gate.sock");
});

Deno.test("loadInvocation() reads the TOML file, expanding ~ and trimming URL slashes", () => {
  const { config } = load(GATE, ["--config", `${TESTDATA}full.toml`]);
  assert.equal(config.config_file, `${TESTDATA}full.toml`);
  assert.equal(config.project_id, "file-project");
  assert.equal(config.socket_path, "/home/u/sockets/gate.sock");
  assert.deepEqual(config.approval_methods, ["queue", "terminal"]);
  assert.equal(config.log_level, "debug");
  assert.equal(config.endpoints.oauth2, "http://127.0.0.1:1234/oauth2");
  assert.equal(config.endpoints.sts, "https://sts.googleapis.com");
});

Deno.test("loadInvocation() precedence is flags > environment > file > defaults", () => {
  const file = `${TESTDATA}full.toml`;
  const fromFile = load(PROXY, ["--config", file]).config;
  assert.equal(fromFile.port, 9000);
  const fromEnv = load(PROXY, ["--config", file], { GCP_GATE_PORT: "9100" }).config;
  assert.equal(fromEnv.port, 9100);
  const fromFlag =
    load(PROXY, ["--config", file, "--port", "9200"], { GCP_GATE_PORT: "9100" }).config;
  assert.equal(fromFlag.port, 9200);
  // GCP_GATE_CONFIG names the file when --config is absent.
  assert.equal(load(PROXY, [], { GCP_GATE_CONFIG: file }).config.port, 9000);
});

Deno.test("loadInvocation() returns a frozen config", () => {
  const { config } = load(PROXY, []);
  assert.ok(Object.isFrozen(config));
  assert.ok(Object.isFrozen(config.endpoints));
  assert.throws(() => {
    (config as { port: number }).port = 1;
  }, TypeError);
});

Deno.test("loadInvocation() names file, line and column for bad TOML", () => {
  const err = loadError(PROXY, ["--config", `${TESTDATA}bad_syntax.toml`]);
  assert.equal(err.code, "config");
  assert.match(err.message, /bad_syntax\.toml: line 2, column \d+/);
});

Deno.test("loadInvocation() refuses unknown keys and tables, naming them and the file", () => {
  const key = loadError(PROXY, ["--config", `${TESTDATA}unknown_key.toml`]);
  assert.equal(key.code, "config");
  assert.match(key.message, /unknown_key\.toml: unknown key "projct"/);
  const table = loadError(PROXY, ["--config", `${TESTDATA}unknown_table.toml`]);
  assert.match(table.message, /unknown table \[endpoint\]/);
});

Deno.test("loadInvocation() refuses bad values with the key, the source and the allowed range", () => {
  const file = loadError(PROXY, ["--config", `${TESTDATA}bad_value.toml`]);
  assert.match(
    file.message,
    /bad_value\.toml: "port" must be an integer from 0 to 65535, got 70000/,
  );
  const env = loadError(PROXY, [], { GCP_GATE_PORT: "http" });
  assert.match(env.message, /environment GCP_GATE_PORT: "port" must be an integer/);
  const flag = loadError(GATE, ["--endpoints-oauth2", "ftp://x"]);
  assert.match(
    flag.message,
    /flag --endpoints-oauth2: "endpoints.oauth2" must be an http\(s\) URL/,
  );
  const email = loadError(GATE, ["--service-account", "not-an-email"]);
  assert.match(email.message, /"service_account" must be a service account email/);
  // A line break in a path could add a flag line to a launcher.
  const newline = loadError(GATE, [], { GCP_GATE_AUDIT_LOG: "/tmp/x\n--allow-all/a.log" });
  assert.match(
    newline.message,
    /environment GCP_GATE_AUDIT_LOG: "audit_log" must be an absolute path/,
  );
  const list = loadError(GATE, ["--approval-methods", "dialog,carrier-pigeon"]);
  assert.match(list.message, /comma-separated list of dialog, terminal, queue/);
});

Deno.test("loadInvocation() refuses a missing explicit config file but not a missing default", () => {
  const err = loadError(PROXY, ["--config", "/nonexistent/gcp-gate.toml"]);
  assert.match(err.message, /\/nonexistent\/gcp-gate\.toml does not exist/);
  assert.equal(load(PROXY, []).config.config_file, undefined);
});

Deno.test("loadInvocation() turns unknown flags into a one-line usage error", () => {
  const err = loadError(PROXY, ["--no-such-flag"]);
  assert.equal(err.code, "usage");
  assert.ok(!err.message.includes("\n"));
  assert.match(err.message, /--no-such-flag/);
  // A flag of another role is unknown here too.
  assert.equal(loadError(PROXY, ["--credentials-file", "/x"]).code, "usage");
});

Deno.test("loadInvocation() with --help or --version reads no config at all", () => {
  const inv = loadInvocation(PROXY, ["--help", "--config", `${TESTDATA}bad_syntax.toml`], {
    env: () => assert.fail("no env read expected"),
    readTextFile: () => assert.fail("no file read expected"),
    cwd: () => "/",
  });
  assert.equal(inv.help, true);
});

Deno.test("loadInvocation() resolves relative paths from flags against the cwd, not from files", () => {
  assert.equal(
    load(PROXY, ["--socket-path", "s/gate.sock"]).config.socket_path,
    "/work/cwd/s/gate.sock",
  );
  assert.throws(
    () =>
      loadInvocation(
        PROXY,
        ["--config", "/c.toml"],
        deps({ HOME: "/h" }, { "/c.toml": 'socket_path = "rel.sock"' }),
      ),
    (err: unknown) =>
      err instanceof GateError && /"socket_path" must be an absolute path/.test(err.message),
  );
});

Deno.test("flag and env names derive from keys", () => {
  assert.equal(flagName("project_id"), "project-id");
  assert.equal(flagName("endpoints.oauth2"), "endpoints-oauth2");
  assert.equal(envName("endpoints.oauth2"), "GCP_GATE_ENDPOINTS_OAUTH2");
});

Deno.test("envNamesFor() lists exactly the variables a role may read", () => {
  assert.deepEqual(envNamesFor("gcp-kube-token"), []);
  const proxy = envNamesFor("gcp-metadata-proxy");
  assert.ok(proxy.includes("GCP_GATE_PORT"));
  assert.ok(proxy.includes("GCP_GATE_CONFIG"));
  // The proxy never reads where ADC lives: it has no business with credentials.
  assert.ok(!proxy.includes("GOOGLE_APPLICATION_CREDENTIALS"));
  assert.ok(!proxy.includes("GCP_GATE_CREDENTIALS_FILE"));
  assert.ok(envNamesFor("gcp-gate").includes("GOOGLE_APPLICATION_CREDENTIALS"));
});

Deno.test("helpText() documents every key of the role with its flag and variable", () => {
  const text = helpText(PROXY, "1.2.3");
  for (const key of Object.keys(CONFIG_SCHEMA) as ConfigKey[]) {
    const forProxy = (CONFIG_SCHEMA[key].roles as readonly string[]).includes("gcp-metadata-proxy");
    assert.equal(text.includes(`--${flagName(key)} `), forProxy, key);
    if (forProxy) assert.ok(text.includes(envName(key)), key);
  }
});

Deno.test("loadInvocation() refuses a socket path longer than a Unix socket can take, by how much", () => {
  const dir = `/tmp/${"d".repeat(MAX_SOCKET_PATH_BYTES - 12)}`;
  assert.equal(load(PROXY, ["--socket-path", `${dir}/g.sock`]).config.socket_path.length, 107);
  const err = loadError(PROXY, ["--socket-path", `${dir}/gate.sock`]);
  assert.equal(err.code, "config");
  assert.match(
    err.message,
    /^flag --socket-path: "socket_path" "\/tmp\/d+\/gate\.sock" is 110 bytes, 3 more than a Unix socket path may have on Linux \(107\); choose a shorter path$/,
  );
  // A default under a long XDG_RUNTIME_DIR: the gate's admin socket too.
  const xdg = { XDG_RUNTIME_DIR: `/run/${"u".repeat(100)}` };
  assert.match(
    loadError(GATE, [], xdg).message,
    /^default \(from XDG_RUNTIME_DIR or HOME\): "socket_path"/,
  );
  assert.match(
    loadError(GATE, ["--socket-path", "/run/g.sock"], xdg).message,
    /"admin_socket_path" .* is 131 bytes, 24 more/,
  );
  // Not checked for a role that never uses the socket (a shared config file).
  const toml = `admin_socket_path = "/run/${"u".repeat(120)}/admin.sock"`;
  const shared = loadInvocation(
    PROXY,
    ["--config", "/c.toml"],
    deps({ HOME: "/home/u" }, { "/c.toml": toml }),
  );
  assert.ok(shared.config.admin_socket_path.length > MAX_SOCKET_PATH_BYTES);
});

Deno.test("loadInvocation() reads the PAM keys and require_reason (TOML boolean or env string)", () => {
  const file = "/work/cwd/pam.toml";
  const toml = [
    `pam_entitlement = "prod-access"`,
    `pam_grant_duration_seconds = 1800`,
    `require_reason = true`,
    "[endpoints]",
    `privilegedaccessmanager = "http://127.0.0.1:9/pam/"`,
  ].join("\n");
  const { config } = loadInvocation(
    GATE,
    ["--config", file],
    deps({ HOME: "/h" }, { [file]: toml }),
  );
  assert.equal(config.pam_entitlement, "prod-access");
  assert.equal(config.pam_location, "global");
  assert.equal(config.pam_grant_duration_seconds, 1800);
  assert.equal(config.pam_wait_seconds, 900);
  assert.equal(config.require_reason, true);
  assert.equal(config.endpoints.privilegedaccessmanager, "http://127.0.0.1:9/pam");
  assert.equal(load(GATE, []).config.require_reason, false);
  assert.equal(load(GATE, [], { GCP_GATE_REQUIRE_REASON: "false" }).config.require_reason, false);
  assert.equal(load(GATE, ["--require-reason", "1"]).config.require_reason, true);
  assert.match(
    loadError(GATE, ["--require-reason", "yes"]).message,
    /"require_reason" must be true or false/,
  );
});

function profilesFile(body: string): string {
  const dir = Deno.makeTempDirSync({ prefix: "gcp-gate-config-" });
  Deno.writeTextFileSync(`${dir}/c.toml`, body);
  return `${dir}/c.toml`;
}

Deno.test("loadInvocation(): [profiles.<name>] tables are read in order, validated, only per-profile keys", () => {
  const file = profilesFile([
    `service_account = "top@p.iam.gserviceaccount.com"`,
    `[profiles.web-1]`,
    `socket_path = "/run/web/gate.sock"`,
    `approval_methods = ["queue"]`,
    `max_approvals_per_minute = 3`,
    `[profiles.api]`,
    `socket_path = "/run/api/gate.sock"`,
  ].join("\n"));
  const c = load(GATE, ["--config", file]).config;
  assert.deepEqual(c.profiles.map((p) => p.name), ["web-1", "api"]);
  assert.deepEqual(c.profiles[0]!.values, {
    socket_path: "/run/web/gate.sock",
    approval_methods: ["queue"],
    max_approvals_per_minute: 3,
  });
  assert.equal(c.service_account, "top@p.iam.gserviceaccount.com");
  assert.ok(Object.isFrozen(c.profiles[0]!.values));
  // Other roles may share the file: they ignore the tables.
  assert.equal(load(PROXY, ["--config", file]).config.profiles.length, 2);
  // No tables: no profiles (one implicit profile in the gate).
  assert.deepEqual(load(GATE, ["--config", profilesFile(`project_id = "p"`)]).config.profiles, []);
});

Deno.test("loadInvocation(): bad profile names, keys and values are one config error each", () => {
  const cases: [string, RegExp][] = [
    [`[profiles.Web]\nsocket_path = "/a/b"`, /profile name "Web" must be 1-32 characters/],
    [`[profiles.${"a".repeat(33)}]\nsocket_path = "/a/b"`, /must be 1-32 characters/],
    [`[profiles.web]\naudit_log = "/a/b"`, /\[profiles\.web\] cannot set "audit_log"/],
    [`[profiles.web]\nsocket_path = "rel/gate.sock"`, /\[profiles\.web\]: "socket_path" must be/],
    [`[profiles.web]\nmax_approvals_per_minute = 0`, /"max_approvals_per_minute" must be/],
    [`profiles = "x"`, /"profiles" must be tables/],
    [`[profiles.web.endpoints]\noauth2 = "http://x"`, /unknown table|cannot set/],
  ];
  for (const [body, re] of cases) {
    const err = loadError(GATE, ["--config", profilesFile(body)]);
    assert.equal(err.code, "config");
    assert.match(err.message, re, body);
  }
});
