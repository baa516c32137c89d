/**
 * The gate daemon: wires the shared collaborators (ADC, Google API, audit
 * log), starts one stack per profile (gate/profile_stack.ts), reloads on
 * SIGHUP or `gcp-gate reload`, and on SIGINT/SIGTERM drains and cleans up.
 */
import type { Config } from "../shared/config.ts";
import type { Logger } from "../shared/log.ts";
import { createAuditLog } from "./audit.ts";
import type { ControlSlot } from "./control.ts";
import { hostCredentialProvider } from "./credentials.ts";
import { createGoogleApi } from "./google_api.ts";
import { type ProfileSet, startProfileSet } from "./profile_set.ts";
import type { SharedCollaborators } from "./profile_stack.ts";

/** What the daemon gets from main.ts besides config. */
export interface GateDaemonOptions {
  /** Builds the approver of one profile (main.ts picks the chain; each profile its own limits). */
  approverFor: SharedCollaborators["approverFor"];
  /** Re-reads the config (same flags and environment) for a reload. */
  reloadConfig?: () => Config;
  /** Filled with status/reload while serving (the admin socket asks it). */
  control?: ControlSlot;
}

/** Resolves on SIGINT/SIGTERM, after aborting `stopping`; SIGHUP calls `onHup`. */
async function untilStopped(
  log: Logger,
  stopping: AbortController,
  onHup: () => void,
): Promise<void> {
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const stop = (): void => {
    log.info("shutting down");
    // Waiting approvals end now (their dialogs close); plain requests drain.
    stopping.abort(new Error("the gate is shutting down"));
    done();
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGHUP", onHup);
  try {
    await finished;
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    Deno.removeSignalListener("SIGHUP", onHup);
  }
}

/** Runs the gate daemon until SIGINT/SIGTERM; returns the exit code. */
export async function runGate(
  config: Config,
  log: Logger,
  options: GateDaemonOptions,
): Promise<number> {
  const api = createGoogleApi({ endpoints: config.endpoints });
  const audit = createAuditLog({
    path: config.audit_log,
    maxBytes: config.audit_max_bytes,
    keep: config.audit_keep,
    log,
  });
  // Set once the profiles run; an ADC change before that has no cache to clear.
  let onAdcChange = (): void => {};
  const credentials = hostCredentialProvider(config, api, () => {
    log.info("Application Default Credentials changed: caches cleared");
    onAdcChange();
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
    pamEndpoint: config.endpoints.privilegedaccessmanager,
    approverFor: options.approverFor,
    signal: stopping.signal,
  };
  let profiles: ProfileSet | undefined;
  try {
    profiles = await startProfileSet(config, shared, options.reloadConfig);
  } finally {
    if (!profiles) await audit.close();
  }
  const set = profiles;
  onAdcChange = () => set.reset();
  if (options.control) options.control.current = set;
  try {
    // A refused reload is logged by the set; the running profiles keep serving.
    await untilStopped(log, stopping, () => void set.reload().catch(() => {}));
  } finally {
    if (options.control) options.control.current = undefined;
    // Sessions live in memory only and end with the process: no revocation lines.
    await set.stopAll("the gate is shutting down", { revoke: false });
    await audit.close();
  }
  log.info("stopped");
  return 0;
}
