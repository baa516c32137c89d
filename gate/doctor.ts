/**
 * `gcp-gate doctor [--json]`: read-only checks of the host side, each PASS,
 * WARN or FAIL with one line and the command that fixes it. Exit 0 when all
 * pass, 1 on any FAIL, 3 when only WARNs (shared/doctor_report.ts).
 *
 * Nothing is written, started or chmod-ed. Google is asked for a refresh and
 * two throw-away impersonated tokens; no token is ever printed.
 */
import { printOut, readEnv, readTextFileIfExists } from "../shared/cli.ts";
import type { Config, Invocation } from "../shared/config.ts";
import {
  type CheckResult,
  doctorExitCode,
  pass,
  renderJson,
  renderText,
  runChecks,
} from "../shared/doctor_report.ts";
import { GateError } from "../shared/errors.ts";
import { createGateClient } from "../shared/gate_client.ts";
import type { Logger } from "../shared/log.ts";
import type { HealthResponse } from "../shared/protocol.ts";
import { lstatFacts } from "../shared/socket_mode.ts";
import { versionString } from "../shared/version.ts";
import { hostCredentialProvider } from "./credentials.ts";
import { type GoogleCheckDeps, googleChecks } from "./doctor_google.ts";
import { createPamClient } from "./pam/client.ts";
import { type LocalCheckDeps, localChecks } from "./doctor_local.ts";
import { createGoogleApi } from "./google_api.ts";
import { inProfile } from "./doctor_profile.ts";
import { resolveProfiles } from "./profiles.ts";

/** A check that reports one result. */
type SingleCheck = { id: string; run: () => Promise<CheckResult> };

/** Everything the doctor touches, injectable for unit tests. */
export type GateDoctorDeps = GoogleCheckDeps & LocalCheckDeps;

function configCheck(config: Config): CheckResult {
  return config.config_file ? pass("config", `read ${config.config_file}`) : pass(
    "config",
    `no config file at ${
      config.config_path ?? "(none looked for)"
    }; defaults, flags and GCP_GATE_* apply`,
  );
}

/**
 * Runs every host check for `config`, in report order. With profiles, the
 * accounts, sockets and approval methods are checked for every profile (the
 * top-level socket is not served), each result naming its profile; the ADC,
 * clock, admin socket and service are the gate's, checked once.
 */
export async function runGateDoctor(config: Config, deps: GateDoctorDeps): Promise<CheckResult[]> {
  const profiles = resolveProfiles(config);
  const perProfile = profiles.map((p) => ({
    p,
    checks: localChecks({ ...config, ...p }, deps),
  }));
  const first = perProfile[0]!.checks;
  const each = (id: string): SingleCheck[] =>
    perProfile.flatMap(({ p, checks }) =>
      checks.filter((c) => c.id === id).map((c) => ({
        id,
        run: async () => inProfile(p, await c.run()),
      }))
    );
  const once = (id: string): SingleCheck[] => first.filter((c) => c.id === id);
  return await runChecks([
    { id: "config", run: () => Promise.resolve(configCheck(config)) },
    ...googleChecks(config, deps, profiles),
    ...each("gate-socket"),
    ...each("gate-running"),
    ...once("admin-socket"),
    ...each("approval"),
    ...once("service"),
  ]);
}

async function health(path: string): Promise<HealthResponse | undefined> {
  const client = createGateClient({ socketPath: path, timeoutMs: 1500 });
  try {
    return await client.health();
  } catch {
    return undefined;
  } finally {
    client.close();
  }
}

function realDeps(config: Config): GateDoctorDeps {
  // One bounded attempt budget: doctor answers within seconds even when Google does not.
  const api = createGoogleApi({ endpoints: config.endpoints, timeoutMs: 8000, deadlineMs: 12_000 });
  return {
    api,
    credentials: hostCredentialProvider(config, api),
    fetch: (input, init) => fetch(input, init),
    now: Date.now,
    pam: createPamClient({ endpoint: config.endpoints.privilegedaccessmanager }),
    lstat: lstatFacts,
    uid: () => Deno.uid(),
    health,
    env: readEnv,
    os: Deno.build.os,
    isTerminal: () => Deno.stdin.isTerminal() && Deno.stderr.isTerminal(),
    readTextFile: readTextFileIfExists,
    version: versionString(),
  };
}

/** `gcp-gate doctor [--json]`. */
export async function doctorCommand(
  inv: Invocation,
  args: readonly string[],
  _log: Logger,
): Promise<number> {
  if (args.length > 0) {
    throw new GateError("usage", `doctor takes no arguments, got ${JSON.stringify(args[0])}`);
  }
  const results = await runGateDoctor(inv.config, realDeps(inv.config));
  printOut(
    inv.extras.json === true
      ? renderJson("gcp-gate", versionString(), results)
      : renderText(results),
  );
  return doctorExitCode(results);
}
