/**
 * The running profiles, by name, and how a reload changes them: new ones
 * start first (a failure undoes the reload), then changed ones are updated
 * and removed ones stop (their sessions revoked and audited). A config that
 * does not resolve changes nothing.
 */
import { type Config, PROFILE_KEYS } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import type { GateControl, ReloadResult } from "./control.ts";
import { type ProfileStack, type SharedCollaborators, startProfileStack } from "./profile_stack.ts";
import { type Profile, resolveProfiles, settingsChanged } from "./profiles.ts";
import type { ApprovalRateLimiter } from "./rate_limit.ts";

export interface ProfileSet extends GateControl {
  /** Forgets every profile's cached tokens (the ADC changed). */
  reset(): void;
  /** Stops every profile; at shutdown without revocation lines (sessions die with the process). */
  stopAll(reason: string, options?: { revoke?: boolean }): Promise<void>;
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

function describe(r: ReloadResult): string {
  const list = (xs: string[]): string => `[${xs.join(", ")}]`;
  return `config reloaded: started ${list(r.started)}, stopped ${list(r.stopped)}, updated ${
    list(r.updated)
  }${
    r.needs_restart.length > 0 ? `; restart the gate to apply: ${r.needs_restart.join(", ")}` : ""
  }`;
}

/** Which wanted profiles must (re)start: new ones, and those whose socket moved. */
function planStarts(
  stacks: ReadonlyMap<string, ProfileStack>,
  wanted: readonly Profile[],
): { moved: Profile[]; fresh: Profile[] } {
  const moved = wanted.filter((p) => {
    const old = stacks.get(p.name);
    return old !== undefined && old.profile.socket_path !== p.socket_path;
  });
  const fresh = wanted.filter((p) => !stacks.has(p.name) || moved.includes(p));
  return { moved, fresh };
}

/**
 * Starts the profiles in `fresh`; on failure stops them and restarts `moved`
 * as they were. A moved profile keeps its limiter (`carried`): moving its
 * socket must not end its cooldown either.
 */
async function startAll(
  stacks: Map<string, ProfileStack>,
  shared: SharedCollaborators,
  opts: { fresh: Profile[]; moved: Profile[]; carried: Map<string, ApprovalRateLimiter> },
): Promise<ProfileStack[]> {
  const started: ProfileStack[] = [];
  const carry = (p: Profile) => {
    const limiter = opts.carried.get(p.name);
    return limiter ? { limiter } : {};
  };
  try {
    for (const p of opts.fresh) started.push(await startProfileStack(p, shared, carry(p)));
    return started;
  } catch (err) {
    await Promise.all(started.map((s) => s.stop("the reload failed")));
    for (const p of opts.moved) {
      stacks.delete(p.name);
      try {
        stacks.set(p.name, await startProfileStack(p, shared, carry(p)));
      } catch (again) {
        shared.log.error(`profile ${p.name} could not be restarted: ${(again as Error).message}`);
      }
    }
    throw err;
  }
}

/** Stops the profiles the new config dropped; applies new settings to the ones it changed. */
async function stopOrUpdate(
  stacks: Map<string, ProfileStack>,
  opts: { byName: Map<string, Profile>; started: ProfileStack[]; result: ReloadResult },
): Promise<void> {
  const { byName, started, result } = opts;
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
}

/** Starts every profile of `config` (all or none) and returns the set. */
export async function startProfileSet(
  config: Config,
  shared: SharedCollaborators,
  reloadConfig: (() => Config) | undefined,
): Promise<ProfileSet> {
  const { log } = shared;
  const stacks = new Map<string, ProfileStack>();
  const stopAll: ProfileSet["stopAll"] = async (reason, options) => {
    await Promise.all([...stacks.values()].map((s) => s.stop(reason, options)));
  };
  try {
    for (const p of resolveProfiles(config)) {
      stacks.set(p.name, await startProfileStack(p, shared));
    }
  } catch (err) {
    await stopAll("the gate failed to start");
    throw err;
  }
  let running = config;

  async function apply(next: Config): Promise<ReloadResult> {
    const wanted = resolveProfiles(next);
    const result: ReloadResult = {
      started: [],
      stopped: [],
      updated: [],
      needs_restart: gateWideChanges(running, next),
    };
    const byName = new Map(wanted.map((p) => [p.name, p]));
    const { moved, fresh } = planStarts(stacks, wanted);
    for (const p of fresh) assertGranted(p);
    // A moved profile stops on its old socket before it binds the new one.
    const before = moved.map((p) => stacks.get(p.name)!.profile);
    const carried = new Map(moved.map((p) => [p.name, stacks.get(p.name)!.limiter]));
    for (const p of moved) await stacks.get(p.name)!.stop("its socket_path changed");
    const started = await startAll(stacks, shared, { fresh, moved: before, carried });
    for (const s of started) {
      stacks.set(s.profile.name, s);
      result.started.push(s.profile.name);
    }
    await stopOrUpdate(stacks, { byName, started, result });
    running = next;
    return result;
  }

  let reloading: Promise<unknown> | undefined;
  async function reload(): Promise<ReloadResult> {
    // One reload at a time: a second SIGHUP waits for the first.
    while (reloading) await reloading.catch(() => {});
    if (!reloadConfig) throw new GateError("config", "this gate cannot reload its config");
    // async: a config that fails to load rejects like a failed apply.
    const p = (async () => await apply(reloadConfig()))();
    reloading = p;
    try {
      const r = await p;
      log.info(describe(r));
      return r;
    } catch (err) {
      log.error(
        `config reload refused, the running profiles keep serving: ${(err as Error).message}`,
      );
      throw err;
    } finally {
      reloading = undefined;
    }
  }

  return {
    status: () => ({
      config_file: running.config_file ?? null,
      profiles: [...stacks.values()].map((s) => s.status()),
    }),
    reload,
    reset: () => {
      for (const s of stacks.values()) s.reset();
    },
    stopAll,
  };
}
