/**
 * The gate daemon: wires configuration to collaborators, serves the socket
 * until SIGINT/SIGTERM, then drains and cleans up.
 */
import { readEnv, readTextFileIfExists } from "../shared/cli.ts";
import type { Config } from "../shared/config.ts";
import type { Logger } from "../shared/log.ts";
import { versionString } from "../shared/version.ts";
import type { Approver } from "./approval/types.ts";
import { ALLOW_EXECUTABLES_ENV } from "./adc_executable.ts";
import { createAuditLog } from "./audit.ts";
import { createCredentialProvider, statStamp } from "./credentials.ts";
import { createGoogleApi } from "./google_api.ts";
import { createIdentityService } from "./identity.ts";
import { createPamClient, resolveEntitlement } from "./pam/client.ts";
import { createPamProvider, type ProdAccessProvider } from "./pam/provider.ts";
import { createProdService } from "./prod.ts";
import { createGateHandler } from "./routes.ts";
import { startGateServer } from "./server.ts";
import { createSessionStore } from "./sessions.ts";
import { createDevTokenMinter } from "./tokens.ts";

/** What the daemon gets from main.ts besides config. */
export interface GateDaemonOptions {
  /** Decides prod requests (main.ts picks it; DENY_ALL until an approval chain is set). */
  approver: Approver;
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
  const resets: (() => void)[] = [];
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
      for (const r of resets) r();
    },
  });
  const source = async (): Promise<string> => (await credentials.token()).token;
  const tokens = createDevTokenMinter({ api, source, serviceAccount: config.service_account });
  const identity = createIdentityService({
    api,
    source,
    knownEmail: () => {
      try {
        return credentials.current().email;
      } catch {
        return undefined;
      }
    },
    serviceAccount: config.service_account,
  });
  let provider: ProdAccessProvider | undefined;
  if (config.pam_entitlement !== undefined) {
    const entitlement = resolveEntitlement(
      config.pam_entitlement,
      config.project_id,
      config.pam_location,
    );
    provider = createPamProvider({
      client: createPamClient({ endpoint: config.endpoints.privilegedaccessmanager }),
      api,
      source: () => credentials.token(),
      audit,
      log,
      entitlement,
      durationSeconds: config.pam_grant_duration_seconds,
      waitSeconds: config.pam_wait_seconds,
      prodServiceAccount: config.prod_service_account,
    });
    log.info(`prod access: Privileged Access Manager grants of ${entitlement}`);
  }
  const prod = createProdService({
    approver: options.approver,
    api,
    source: () => credentials.token(),
    identity,
    sessions: createSessionStore(),
    audit,
    prodServiceAccount: config.prod_service_account,
    prodTokenTtlSeconds: Math.min(config.prod_token_ttl_seconds, config.max_token_ttl_seconds),
    provider,
    requireReason: config.require_reason,
    log,
  });
  resets.push(() => tokens.reset(), () => identity.reset(), () => prod.reset());

  // Report missing ADC early, but keep serving: a later login fixes it without a restart.
  try {
    credentials.current();
  } catch (err) {
    log.warn((err as Error).message);
  }
  if (!config.service_account) {
    log.warn("no service_account configured: dev tokens will be refused until it is set");
  }

  const stopping = new AbortController();
  const handler = createGateHandler({
    tokens,
    identity,
    serviceAccount: config.service_account,
    prod,
    audit,
    log,
    version: versionString(),
    maxTokenTtlSeconds: config.max_token_ttl_seconds,
    sessionTtlSeconds: config.session_ttl_seconds,
    universeDomain: config.universe_domain,
    defaultProject: config.project_id,
    startedAt: Date.now(),
    signal: stopping.signal,
  });
  const server = await startGateServer({ socketPath: config.socket_path, handler, log });
  const stop = (): void => {
    log.info("shutting down");
    void server.shutdown();
    // Waiting approvals end now (their dialogs close); plain requests drain.
    stopping.abort(new Error("the gate is shutting down"));
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  try {
    await server.finished;
    await server.shutdown();
  } finally {
    // Grants end with the gate (bounded: a stuck API must not hold the shutdown).
    await prod.close(5000).catch((err) => log.warn(String(err)));
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    await audit.close();
  }
  log.info("stopped");
  return 0;
}
