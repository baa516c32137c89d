/**
 * Helpers for integration tests: start the built launchers from dist/bin/ as
 * real processes, wait for their ready line, always tear down, and dump a
 * child's output only when a test fails.
 */
import { type FakeGoogle, startFakeGoogle } from "./fakes/google.ts";

export const ROOT: string = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const BIN: string = `${ROOT}/dist/bin`;

export type RoleBin =
  | "gcp-gate"
  | "gcp-metadata-proxy"
  | "with-prod"
  | "gcp-kube-token"
  | "gcp-kube-setup";

/** A private temp dir, removed on dispose. */
export interface TempDir extends AsyncDisposable {
  readonly path: string;
}

export function tempDir(prefix = "gcp-gate-test-"): TempDir {
  const path = Deno.makeTempDirSync({ prefix });
  Deno.chmodSync(path, 0o700);
  return {
    path,
    [Symbol.asyncDispose]: async () => {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

const DENO_DIR: string = Deno.env.get("DENO_DIR") ??
  `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`}/deno`;

/** Variables kept from the real environment: Deno's cache and TLS trust only. */
function passthrough(): Record<string, string> {
  const out: Record<string, string> = { DENO_DIR };
  for (const k of ["SSL_CERT_FILE", "SSL_CERT_DIR", "DENO_CERT", "DENO_TLS_CA_STORE"]) {
    const v = Deno.env.get(k);
    if (v) out[k] = v;
  }
  return out;
}

/** A clean environment: nothing from the developer's machine leaks into tests. */
export function baseEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...passthrough(),
    PATH: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: home,
    XDG_RUNTIME_DIR: `${home}/run`,
    XDG_CONFIG_HOME: `${home}/.config`,
    XDG_STATE_HOME: `${home}/.local/state`,
    NO_COLOR: "1",
    LANG: "C.UTF-8",
    ...extra,
  };
}

export interface RunningProcess extends AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly pid: number;
  /** Everything the process wrote so far (stdout + stderr, interleaved by chunk). */
  output(): string;
  stdout(): string;
  stderr(): string;
  /** Resolves when `re` matches the output (or rejects at `timeoutMs`). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  kill(signal?: Deno.Signal): void;
  readonly status: Promise<Deno.CommandStatus>;
}

export interface StartOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Wait for this on stdout/stderr before returning. */
  ready?: RegExp;
  timeoutMs?: number;
  stdin?: "piped" | "null";
  /** Run this program instead of a dist/bin launcher. */
  command?: string;
}

/** Starts `dist/bin/<role>` (or `options.command`) with `args`. */
export async function start(
  role: RoleBin | string,
  args: string[],
  options: StartOptions = {},
): Promise<RunningProcess> {
  const cmd = options.command ?? (role.includes("/") ? role : `${BIN}/${role}`);
  const child = new Deno.Command(cmd, {
    args,
    env: options.env ?? baseEnv(Deno.makeTempDirSync()),
    clearEnv: true,
    cwd: options.cwd ?? ROOT,
    stdin: options.stdin ?? "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  let so = "";
  let se = "";
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  const decoder = () => new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>, which: "o" | "e") => {
    const d = decoder();
    for await (const chunk of stream) {
      const s = d.decode(chunk, { stream: true });
      out += s;
      if (which === "o") so += s;
      else se += s;
      for (const w of [...waiters]) {
        const m = out.match(w.re);
        if (m) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    }
  };
  const pumps = Promise.all([pump(child.stdout, "o"), pump(child.stderr, "e")]);
  const status = child.status.then(async (s) => {
    await pumps;
    return s;
  });
  let exited = false;
  void status.then(() => (exited = true));
  const proc: RunningProcess = {
    child,
    pid: child.pid,
    output: () => out,
    stdout: () => so,
    stderr: () => se,
    waitFor(re, timeoutMs = options.timeoutMs ?? 15_000) {
      const m = out.match(re);
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(
            new Error(
              `timed out after ${timeoutMs} ms waiting for ${re} from ${role}; output:\n${out}`,
            ),
          );
        }, timeoutMs);
        const w = {
          re,
          resolve: (mm: RegExpMatchArray) => {
            clearTimeout(timer);
            resolve(mm);
          },
        };
        waiters.push(w);
        void status.then((s) => {
          if (waiters.includes(w)) {
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(w), 1);
            reject(
              new Error(`${role} exited (code ${s.code}) before printing ${re}; output:\n${out}`),
            );
          }
        });
      });
    },
    kill(signal = "SIGTERM") {
      if (!exited) {
        try {
          child.kill(signal);
        } catch { /* already gone */ }
      }
    },
    status,
    async [Symbol.asyncDispose]() {
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await status;
      clearTimeout(t);
      if (options.stdin === "piped") await child.stdin.close().catch(() => {});
    },
  };
  if (options.ready) await proc.waitFor(options.ready);
  return proc;
}

export interface RunResult {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** Runs a launcher (or command) to completion. */
export async function run(
  role: RoleBin | string,
  args: string[],
  options: Omit<StartOptions, "ready"> & { input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const cmd = options.command ?? (role.includes("/") ? role : `${BIN}/${role}`);
  const child = new Deno.Command(cmd, {
    args,
    env: options.env ?? baseEnv(Deno.makeTempDirSync()),
    clearEnv: true,
    cwd: options.cwd ?? ROOT,
    stdin: options.input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
  }).spawn();
  if (options.input !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.input));
    await w.close();
  }
  const out = await child.output();
  const d = new TextDecoder();
  return {
    code: out.code,
    signal: out.signal,
    stdout: d.decode(out.stdout),
    stderr: d.decode(out.stderr),
  };
}

/** True when `name` is an executable on PATH (or an absolute path that exists). */
export function hasCommand(name: string): boolean {
  if (name.startsWith("/")) {
    try {
      return Deno.statSync(name).isFile;
    } catch {
      return false;
    }
  }
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return true;
    } catch { /* next */ }
  }
  return false;
}

/** Fails when `text` contains any secret the fake ever issued. */
export function assertNoSecrets(text: string, fake: FakeGoogle, where = "output"): void {
  for (const secret of fake.secrets()) {
    if (text.includes(secret)) throw new Error(`${where} leaks a secret (${secret.slice(0, 12)}…)`);
  }
}

/** The dev service account the stack impersonates. */
export const DEV_SA = "dev@demo-project.iam.gserviceaccount.com";
export const PROD_SA = "prod@demo-project.iam.gserviceaccount.com";

export interface StackOptions {
  /** Extra lines for the gate's config.toml. */
  gateToml?: string;
  /** Start a metadata proxy too (default true). */
  proxy?: boolean;
  /** Extra env for the gate. */
  gateEnv?: Record<string, string>;
  fake?: FakeGoogle;
}

/** A fake Google + a real gate (+ a real proxy) in a fresh temp home. */
export interface Stack extends AsyncDisposable {
  readonly fake: FakeGoogle;
  readonly home: string;
  readonly socketPath: string;
  readonly configPath: string;
  readonly gate: RunningProcess;
  readonly proxy: RunningProcess | undefined;
  /** `127.0.0.1:<port>` of the proxy. */
  readonly proxyHostPort: string | undefined;
  /** Environment for metadata clients pointed at the proxy. */
  readonly clientEnv: Record<string, string>;
  /** All output of all processes so far. */
  logs(): string;
}

/** The audit log and its rotations under the stack's default state dir. */
function auditFiles(home: string): string[] {
  const dir = `${home}/.local/state/gcp-gate`;
  try {
    return [...Deno.readDirSync(dir)].filter((e) => e.isFile && e.name.startsWith("audit.log"))
      .map((e) => `${dir}/${e.name}`);
  } catch {
    return [];
  }
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const dir = tempDir();
  const home = dir.path;
  const fake = options.fake ?? await startFakeGoogle();
  const ownsFake = options.fake === undefined;
  const adc = `${home}/adc.json`;
  Deno.writeTextFileSync(adc, fake.adcJson(), { mode: 0o600 });
  Deno.mkdirSync(`${home}/run`, { mode: 0o700 });
  Deno.chmodSync(`${home}/run`, 0o700);
  const socketPath = `${home}/run/gcp-gate/gate.sock`;
  const configPath = `${home}/gate.toml`;
  Deno.writeTextFileSync(
    configPath,
    [
      `project_id = "demo-project"`,
      `service_account = "${DEV_SA}"`,
      `socket_path = "${socketPath}"`,
      `credentials_file = "${adc}"`,
      // with-prod runs beside the gate here, not in a container with a
      // read-only mount: accept the writable socket directory (tests/socket_trust_test.ts
      // covers the refusal).
      `allow_writable_socket_dir = true`,
      options.gateToml ?? "",
      fake.endpointsToml(),
    ].join("\n"),
  );
  const env = baseEnv(home, options.gateEnv);
  const started: RunningProcess[] = [];
  try {
    const gate = await start("gcp-gate", ["--config", configPath], {
      env,
      ready: /ready: listening on/,
    });
    started.push(gate);
    let proxy: RunningProcess | undefined;
    let proxyHostPort: string | undefined;
    if (options.proxy !== false) {
      proxy = await start("gcp-metadata-proxy", ["--config", configPath, "--port", "0"], {
        env,
        ready: /listening on http:\/\/(127\.0\.0\.1:\d+)/,
      });
      started.push(proxy);
      proxyHostPort = (await proxy.waitFor(/listening on http:\/\/(127\.0\.0\.1:\d+)/))[1];
    }
    const clientEnv = baseEnv(
      home,
      proxyHostPort
        ? {
          GCE_METADATA_HOST: proxyHostPort,
          GCE_METADATA_IP: proxyHostPort,
          GCE_METADATA_ROOT: proxyHostPort,
          NO_PROXY: "127.0.0.1,localhost",
        }
        : {},
    );
    return {
      fake,
      home,
      socketPath,
      configPath,
      gate,
      proxy,
      proxyHostPort,
      clientEnv,
      logs: () => started.map((p) => p.output()).join("\n"),
      async [Symbol.asyncDispose]() {
        for (const p of started.reverse()) await p[Symbol.asyncDispose]();
        // Every stack is also a leak test: the whole output of the gate and
        // the proxy, and the audit log, must hold none of the fake's secrets.
        let leak: unknown;
        try {
          assertNoSecrets(started.map((p) => p.output()).join("\n"), fake, "gate/proxy output");
          for (const f of auditFiles(home)) assertNoSecrets(Deno.readTextFileSync(f), fake, f);
        } catch (err) {
          leak = err;
        }
        if (ownsFake) await fake.close();
        await dir[Symbol.asyncDispose]();
        if (leak) throw leak;
      },
    };
  } catch (err) {
    for (const p of started.reverse()) await p[Symbol.asyncDispose]();
    if (ownsFake) await fake.close();
    await dir[Symbol.asyncDispose]();
    throw err;
  }
}

/** Gate config for prod tests: approvals through the queue, prod tokens for PROD_SA. */
export const QUEUE_PROD_TOML: string = [
  `approval_methods = "queue"`,
  `prod_service_account = "${PROD_SA}"`,
].join("\n");

/**
 * Waits for the next queued prod request and approves it the way a human
 * does, with the real `gcp-gate pending` / `gcp-gate approve <id> --yes`.
 * Returns the request id.
 */
export async function approveNext(stack: Stack, timeoutMs = 20_000): Promise<string> {
  const env = baseEnv(stack.home);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const pending = await run("gcp-gate", ["pending", "--config", stack.configPath], { env });
    const id = /^(\S+) {2}\(waiting/m.exec(pending.stdout)?.[1];
    if (id) {
      const ok = await run("gcp-gate", ["approve", id, "--yes", "--config", stack.configPath], {
        env,
      });
      if (ok.code !== 0) throw new Error(`approve failed: ${ok.stderr}`);
      return id;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`no prod request was queued within ${timeoutMs} ms\n${stack.logs()}`);
}
