/**
 * A fake Google and one real gate (dist/bin/gcp-gate) serving several
 * profiles, each on a socket in its own directory, in a fresh temp home.
 */
import {
  assertNoSecrets,
  baseEnv,
  BIN,
  run,
  type RunningProcess,
  start,
  tempDir,
} from "./_utils.ts";
import { type FakeGoogle, startFakeGoogle } from "./fakes/google.ts";

/** One profile of the test config: its name and extra TOML lines for its table. */
export interface TestProfile {
  name: string;
  toml?: string;
  /** Its dev account (default devSa(name)). */
  serviceAccount?: string;
}

export interface ProfilesGate extends AsyncDisposable {
  readonly fake: FakeGoogle;
  readonly home: string;
  readonly configPath: string;
  readonly gate: RunningProcess;
  readonly env: Record<string, string>;
  /** The socket of profile `name`. */
  socket(name: string): string;
  /** Rewrites the config (for reload tests). */
  writeConfig(profiles: readonly TestProfile[], extra?: string): void;
  /** Runs `gcp-gate <args> --config <config>`. */
  cli(...args: string[]): ReturnType<typeof run>;
  auditLines(): Record<string, unknown>[];
}

/** The account profile `name` impersonates for dev tokens. */
export function devSa(name: string): string {
  return `dev-${name}@demo-project.iam.gserviceaccount.com`;
}

/** Starts the gate with `profiles` and waits until every one listens. */
export async function startProfilesGate(
  profiles: readonly TestProfile[],
  options: {
    topToml?: string;
    /** Start the launcher under this soft descriptor limit (as a desktop session might). */
    softNoFile?: number;
  } = {},
): Promise<ProfilesGate> {
  const dir = tempDir("gcp-gate-profiles-");
  const home = dir.path;
  const fake = await startFakeGoogle();
  const adc = `${home}/adc.json`;
  Deno.writeTextFileSync(adc, fake.adcJson(), { mode: 0o600 });
  Deno.mkdirSync(`${home}/run`, { mode: 0o700 });
  Deno.chmodSync(`${home}/run`, 0o700);
  const configPath = `${home}/gate.toml`;
  const socket = (name: string): string => `${home}/run/${name}/gate.sock`;
  const writeConfig = (ps: readonly TestProfile[], extra = ""): void => {
    Deno.writeTextFileSync(
      configPath,
      [
        `project_id = "demo-project"`,
        `credentials_file = "${adc}"`,
        options.topToml ?? "",
        extra,
        fake.endpointsToml(),
        ...ps.map((p) =>
          [
            `[profiles.${p.name}]`,
            `socket_path = "${socket(p.name)}"`,
            `service_account = "${p.serviceAccount ?? devSa(p.name)}"`,
            p.toml ?? "",
          ].join("\n")
        ),
      ].join("\n"),
    );
  };
  writeConfig(profiles);
  const env = baseEnv(home);
  let gate: RunningProcess | undefined;
  try {
    gate = options.softNoFile === undefined
      ? await start("gcp-gate", ["--config", configPath], { env })
      : await start("/bin/sh", [
        "-c",
        `ulimit -Sn ${options.softNoFile} && exec "$0" "$@"`,
        `${BIN}/gcp-gate`,
        "--config",
        configPath,
      ], { env });
    for (const p of profiles) {
      await gate.waitFor(new RegExp(`ready: profile ${p.name} listening on`));
    }
  } catch (err) {
    if (gate) await gate[Symbol.asyncDispose]();
    await fake.close();
    await dir[Symbol.asyncDispose]();
    throw err;
  }
  const g = gate;
  const auditPath = `${home}/.local/state/gcp-gate/audit.log`;
  return {
    fake,
    home,
    configPath,
    gate: g,
    env,
    socket,
    writeConfig,
    cli: (...args) => run("gcp-gate", [...args, "--config", configPath], { env }),
    auditLines() {
      try {
        return Deno.readTextFileSync(auditPath).split("\n").filter((l) => l !== "")
          .map((l) => JSON.parse(l));
      } catch {
        return [];
      }
    },
    async [Symbol.asyncDispose]() {
      await g[Symbol.asyncDispose]();
      let leak: unknown;
      try {
        assertNoSecrets(g.output(), fake, "gate output");
        assertNoSecrets(Deno.readTextFileSync(auditPath), fake, "audit log");
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) leak = err;
      }
      await fake.close();
      await dir[Symbol.asyncDispose]();
      if (leak) throw leak;
    },
  };
}

/** Waits for the next request queued for approval and returns its id and pending line. */
export async function nextPending(
  g: ProfilesGate,
  timeoutMs = 10_000,
): Promise<{ id: string; line: string }> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const res = await g.cli("pending");
    const m = /^([0-9a-f]{8})\s.*$/m.exec(res.stdout);
    if (m) return { id: m[1]!, line: m[0] };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no request was queued within ${timeoutMs} ms\n${g.gate.output()}`);
}
