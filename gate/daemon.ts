/**
 * The gate daemon: wires the shared collaborators (ADC, Google API, audit
 * log), starts one stack per profile (gate/profile_stack.ts), reloads on
 * SIGHUP or `gcp-gate reload`, and on SIGINT/SIGTERM drains and cleans up.
 */
import { readEnv, readTextFileIfExists } from "../shared/cli.ts";
import { type Config, PROFILE_KEYS } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import type { Logger } from "../shared/log.ts";
import type { Approver } from "./approval/types.ts";
import { ALLOW_EXECUTABLES_ENV } from "./adc_executable.ts";
import { createAuditLog } from "./audit.ts";
import type { ControlSlot, ReloadResult } from "./control.ts";
import { createCredentialProvider, statStamp } from "./credentials.ts";
import { createGoogleApi } from "./google_api.ts";
import { type ProfileStack, type SharedCollaborators, startProfileStack } from "./profile_stack.ts";
import { type Profile, resolveProfiles, settingsChanged } from "./profiles.ts";

/** What the daemon gets from main.ts besides config. */
export interface GateDaemonOptions {
  /** Builds the approver of one profile (main.ts picks the chain; each profile its own limits). */
  approverFor: (profile: Profile) => Approver;
  /** Re-reads the config (same flags and environment) for a reload. */
  reloadConfig?: () => Config;
  /** Filled with status/reload while serving (the admin socket asks it). */
  control?: ControlSlot;
}

/** Gate-wide keys: a reload reports their change, a restart applies it. */
function gateWideChanges(a: Config, b: Config): string[] {
  const skip = new Set<string>([...PROFILE_KEYS, "profiles"]);
  return Object.keys(a).filter((k) =>
    !skip.has(k) &&
    JSON.stringify(a[k as keyof Config]) !== JSON.stringify(b[k as keyof Config])
  );
}

/** Refuses a socket the launcher did not grant (a reload cannot widen permissions). */
function assertGranted(profile: Profile): void {
  const state = Deno.permissions.querySync({ name: "write", path: profile.socket_path }).state;
  if (state !== "granted") {
    throw new GateError(
      "config",
      `profile ${profile.name}: its socket ${profile.socket_path} was not granted when the gate started (permissions are fixed at launch); restart the gate to serve it`,
    );
  }
}

/** Runs the gate daemon until SIGINT/SIGTERM; returns the exit code. */
export async function runGate(
  config: Config,
  log: Logger,
  options: GateDaemonOptions,
): Promise<number> {
  const profiles = resolveProfiles(config);
  const api = createGoogleApi({ endpoints: config.endpoints });
  const audit = createAuditLog({
    path: config.audit_log,
    maxBytes: config.audit_max_bytes,
    keep: config.audit_keep,
    log,
  });
  const stacks = new Map<string, ProfileStack>();
  const credentials = createCredentialProvider({
    api,
    endpoints: config.endpoints,
    candidates: config.credentials_candidates,
    readFile: readTextFileIfExists,
    stamp: statStamp,
    // Google's own opt-in for executable-sourced credentials, honoured as its libraries do.
    allowExecutables: readEnv(ALLOW_EXECUTABLES_ENV) === "1",
    hostname: () => Deno.hostname(),
    onChange: () => {
      log.info("Application Default Credentials changed: caches cleared");
      for (const s of stacks.values()) s.reset();
    },
  });
  // Report missing ADC early, but keep serving: a later login fixes it without a restart.
  try {
    credentials.current();
  } catch (err) {
    log.warn((err as Error).message);
  }

  const stopping = new AbortController();
  const shared: SharedCollaborators = {
    api,
    credentials,
    audit,
    log,
    universeDomain: config.universe_domain,
    approverFor: options.approverFor,
    signal: stopping.signal,
  };
  let running = config;
  try {
    for (const p of profiles) stacks.set(p.name, await startProfileStack(p, shared));
  } catch (err) {
    await Promise.all([...stacks.values()].map((s) => s.stop("the gate failed to start")));
    await audit.close();
    throw err;
  }

  /** Starts new profiles first (any failure undoes them), then updates and stops. */
  async function apply(next: Config): Promise<ReloadResult> {
    const wanted = resolveProfiles(next);
    const result: ReloadResult = {
      started: [],
      stopped: [],
      updated: [],
      needs_restart: gateWideChanges(running, next),
    };
    const byName = new Map(wanted.map((p) => [p.name, p]));
    const moved = wanted.filter((p) => {
      const old = stacks.get(p.name);
      return old !== undefined && old.profile.socket_path !== p.socket_path;
    });
    const fresh = wanted.filter((p) => !stacks.has(p.name) || moved.includes(p));
    for (const p of fresh) assertGranted(p);
    // A moved profile stops on its old socket before it binds the new one.
    for (const p of moved) await stacks.get(p.name)!.stop("its socket_path changed");
    const started: ProfileStack[] = [];
    try {
      for (const p of fresh) started.push(await startProfileStack(p, shared));
    } catch (err) {
      await Promise.all(started.map((s) => s.stop("the reload failed")));
      for (const p of moved) stacks.delete(p.name);
      throw err;
    }
    for (const s of started) {
      stacks.set(s.profile.name, s);
      result.started.push(s.profile.name);
    }
    for (const [name, s] of stacks) {
      const p = byName.get(name);
      if (!p) {
        await s.stop("removed from the config");
        stacks.delete(name);
        result.stopped.push(name);
      } else if (!started.includes(s) && settingsChanged(s.profile, p)) {
        s.update(p);
        result.updated.push(name);
      }
    }
    running = next;
    return result;
  }

  let reloading: Promise<ReloadResult> | undefined;
  async function reload(): Promise<ReloadResult> {
    // One reload at a time: a second SIGHUP waits for the first.
    while (reloading) await reloading.catch(() => {});
    if (!options.reloadConfig) throw new GateError("config", "this gate cannot reload");
    const p = (async () => {
      const next = options.reloadConfig!();
      const r = await apply(next);
      log.info(
        `config reloaded: started [${r.started.join(", ")}], stopped [${
          r.stopped.join(", ")
        }], updated [${r.updated.join(", ")}]${
          r.needs_restart.length > 0
            ? `; restart the gate to apply: ${r.needs_restart.join(", ")}`
            : ""
        }`,
      );
      return r;
    })();
    reloading = p;
    try {
      return await p;
    } catch (err) {
      log.error(
        `config reload refused, the running profiles keep serving: ${(err as Error).message}`,
      );
      throw err;
    } finally {
      reloading = undefined;
    }
  }

  if (options.control) {
    options.control.current = {
      status: () => ({
        config_file: running.config_file ?? null,
        profiles: [...stacks.values()].map((s) => s.status()),
      }),
      reload,
    };
  }
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const stop = (): void => {
    log.info("shutting down");
    // Waiting approvals end now (their dialogs close); plain requests drain.
    stopping.abort(new Error("the gate is shutting down"));
    done();
  };
  const hup = (): void => void reload().catch(() => {});
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGHUP", hup);
  try {
    await finished;
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    Deno.removeSignalListener("SIGHUP", hup);
    if (options.control) options.control.current = undefined;
    // Sessions live in memory only and end with the process: no revocation lines.
    await Promise.all(
      [...stacks.values()].map((s) => s.stop("the gate is shutting down", { revoke: false })),
    );
    await audit.close();
  }
  log.info("stopped");
  return 0;
}
