import assert from "node:assert/strict";
import { type Invocation, loadInvocation } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import { createLogger } from "../shared/log.ts";
import { GATE_CLI } from "./cli.ts";
import {
  gateExecutable,
  installService,
  type InstallServiceDeps,
  launchdPlist,
  renderService,
  serviceFilePath,
  systemdUnit,
} from "./install_service.ts";

const ENV: Record<string, string> = {
  HOME: "/home/eng",
  XDG_RUNTIME_DIR: "/run/user/1000",
  GOOGLE_APPLICATION_CREDENTIALS: "/home/eng/adc.json",
};

function invocation(args: string[], env: Record<string, string> = ENV): Invocation {
  return loadInvocation(GATE_CLI, args, {
    env: (n) => env[n],
    readTextFile: (p) => (p === "/etc/g.toml" ? "" : undefined),
    cwd: () => "/work",
  });
}

interface FakeFs {
  files: Map<string, { text: string; mode: number }>;
  out: string[];
  notes: string[];
  deps: InstallServiceDeps;
}

function fakeDeps(os = "linux", env: Record<string, string> = ENV): FakeFs {
  const files = new Map<string, { text: string; mode: number }>();
  const out: string[] = [];
  const notes: string[] = [];
  return {
    files,
    out,
    notes,
    deps: {
      os,
      env: (n) => env[n],
      mainModule: "file:///opt/gcp-gate/lib/gcp-gate.js",
      execPath: () => "/usr/bin/deno",
      readTextFile: (p) => files.get(p)?.text,
      writeTextFile: (p, text, mode) => void files.set(p, { text, mode }),
      print: (t) => void out.push(t),
      note: (t) => void notes.push(t),
    },
  };
}

const log = createLogger({ write: () => {} });

Deno.test("systemdUnit() runs the launcher with the config and pins the runtime dir", () => {
  const unit = systemdUnit({
    execPath: "/opt/gcp gate/bin/gcp-gate",
    configPath: "/home/eng/.config/gcp-gate/config.toml",
    env: { XDG_RUNTIME_DIR: "/run/user/1000" },
  });
  assert.match(
    unit,
    /^ExecStart="\/opt\/gcp gate\/bin\/gcp-gate" "--config" "\/home\/eng\/\.config\/gcp-gate\/config\.toml"$/m,
  );
  assert.match(unit, /^Environment="XDG_RUNTIME_DIR=\/run\/user\/1000"$/m);
  assert.match(unit, /^UMask=0077$/m);
  assert.match(unit, /^WantedBy=default\.target$/m);
});

Deno.test("systemdUnit() escapes % and $ so systemd does not expand them", () => {
  const unit = systemdUnit({ execPath: "/a%b/$x", configPath: '/c"d', env: {} });
  assert.match(unit, /ExecStart="\/a%%b\/\$\$x" "--config" "\/c\\"d"/);
  assert.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m, "reload is SIGHUP");
});

Deno.test("systemdUnit() refuses a path with a newline (directive injection)", () => {
  assert.throws(
    () => systemdUnit({ execPath: "/x\nExecStartPre=/bin/evil", configPath: "/c", env: {} }),
    (e: unknown) => e instanceof GateError && e.code === "config",
  );
});

Deno.test("launchdPlist() is a RunAtLoad agent with XML-escaped arguments", () => {
  const plist = launchdPlist({
    execPath: "/Users/e/gcp-gate/bin/gcp-gate",
    configPath: "/Users/e/a&b.toml",
    env: { CLOUDSDK_CONFIG: "/Users/e/.gcloud" },
    logPath: "/Users/e/Library/Logs/gcp-gate.log",
  });
  assert.match(plist, /<string>\/Users\/e\/a&amp;b\.toml<\/string>/);
  assert.match(plist, /<key>RunAtLoad<\/key>\s*<true\/>/);
  assert.match(plist, /<key>CLOUDSDK_CONFIG<\/key>\s*<string>\/Users\/e\/\.gcloud<\/string>/);
  assert.match(plist, /<key>Label<\/key>\s*<string>dev\.gcp-gate\.gate<\/string>/);
});

Deno.test("serviceFilePath() follows XDG_CONFIG_HOME on Linux and LaunchAgents on macOS", () => {
  assert.equal(
    serviceFilePath("linux", (n) => ({ HOME: "/h", XDG_CONFIG_HOME: "/x" } as const)[n as "HOME"]),
    "/x/systemd/user/gcp-gate.service",
  );
  assert.equal(
    serviceFilePath("linux", (n) => (n === "HOME" ? "/h" : undefined)),
    "/h/.config/systemd/user/gcp-gate.service",
  );
  assert.equal(
    serviceFilePath("darwin", (n) => (n === "HOME" ? "/h" : undefined)),
    "/h/Library/LaunchAgents/dev.gcp-gate.gate.plist",
  );
});

Deno.test("gateExecutable() maps the bundle to its launcher, else the compiled binary", () => {
  assert.equal(gateExecutable("file:///opt/g/lib/gcp-gate.js", () => "/x"), "/opt/g/bin/gcp-gate");
  assert.equal(gateExecutable("file:///tmp/deno-compile-gcp-gate/main.js", () => "/x"), "/x");
});

Deno.test("renderService() carries the config path, runtime dir and ADC location", () => {
  const inv = invocation(["install-service", "--config", "/etc/g.toml"]);
  const { path, text } = renderService(inv, fakeDeps().deps);
  assert.equal(path, "/home/eng/.config/systemd/user/gcp-gate.service");
  assert.match(text, /"--config" "\/etc\/g\.toml"/);
  assert.match(text, /Environment="XDG_RUNTIME_DIR=\/run\/user\/1000"/);
  assert.match(text, /Environment="GOOGLE_APPLICATION_CREDENTIALS=\/home\/eng\/adc\.json"/);
  assert.match(text, /ExecStart="\/opt\/gcp-gate\/bin\/gcp-gate"/);
});

Deno.test("renderService() leaves --config out when no config file exists", () => {
  const { text } = renderService(invocation(["install-service"]), fakeDeps().deps);
  assert.match(text, /^ExecStart="\/opt\/gcp-gate\/bin\/gcp-gate"$/m);
});

Deno.test("install-service --print prints and writes nothing", async () => {
  const fs = fakeDeps();
  const code = await installService(invocation(["install-service", "--print"]), [], log, fs.deps);
  assert.equal(code, 0);
  assert.equal(fs.files.size, 0);
  assert.match(fs.out.join(""), /^\[Service\]$/m);
});

Deno.test("install-service writes 0644, is idempotent, and needs --yes to replace", async () => {
  const fs = fakeDeps();
  const inv = invocation(["install-service"]);
  assert.equal(await installService(inv, [], log, fs.deps), 0);
  const path = "/home/eng/.config/systemd/user/gcp-gate.service";
  assert.equal(fs.files.get(path)?.mode, 0o644);
  assert.match(fs.notes.join("\n"), /systemctl --user enable --now gcp-gate/);
  assert.equal(await installService(inv, [], log, fs.deps), 0);
  assert.match(fs.notes.join("\n"), /already up to date/);
  fs.files.set(path, { text: "[Service]\nExecStart=/old\n", mode: 0o644 });
  await assert.rejects(
    installService(inv, [], log, fs.deps),
    (e: unknown) => e instanceof GateError && e.code === "usage" && /--yes/.test(e.message),
  );
  assert.equal(fs.files.get(path)?.text, "[Service]\nExecStart=/old\n");
  await installService(invocation(["install-service", "--yes"]), [], log, fs.deps);
  assert.match(fs.files.get(path)?.text ?? "", /ExecStart="\/opt\/gcp-gate\/bin\/gcp-gate"/);
});

Deno.test("install-service writes a launchd agent on macOS", async () => {
  const fs = fakeDeps("darwin");
  await installService(invocation(["install-service"]), [], log, fs.deps);
  const plist = fs.files.get("/home/eng/Library/LaunchAgents/dev.gcp-gate.gate.plist");
  assert.match(plist?.text ?? "", /<key>ProgramArguments<\/key>/);
  assert.match(fs.notes.join("\n"), /launchctl bootstrap gui\//);
});

Deno.test("install-service refuses other systems and stray arguments", async () => {
  await assert.rejects(
    installService(invocation(["install-service"]), [], log, fakeDeps("windows").deps),
    (e: unknown) => e instanceof GateError && e.code === "usage",
  );
  await assert.rejects(
    installService(invocation(["install-service"]), ["now"], log, fakeDeps().deps),
    (e: unknown) => e instanceof GateError && e.code === "usage",
  );
});
