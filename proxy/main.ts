/** gcp-metadata-proxy: entry point. */
import { parseInvocation, printOut, runMain } from "../shared/cli.ts";
import type { Config } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import { createGateClient } from "../shared/gate_client.ts";
import { createLogger, type Logger } from "../shared/log.ts";
import { createMetadataHandler } from "../shared/metadata/handler.ts";
import { startMetadataServer } from "../shared/metadata/server.ts";
import { createTokenCache } from "../shared/metadata/token_cache.ts";
import {
  checkSocketDirWritable,
  checkSocketTrust,
  READONLY_MOUNT_HINT,
  type SocketTrustDeps,
  SYSTEM_SOCKET_TRUST_DEPS,
} from "../shared/socket_trust.ts";
import { PROXY_CLI } from "./cli.ts";
import { proxyDoctorCommand } from "./doctor.ts";
import { envLines } from "./env.ts";

/**
 * Start-up checks of the gate socket, reported once. The proxy keeps running
 * either way: an untrusted socket is refused on every call (503 with the
 * reason), and a fixed mount or a returning ssh forward needs no restart.
 */
export function reportSocketTrust(path: string, log: Logger, deps: SocketTrustDeps): void {
  try {
    checkSocketTrust(path, deps);
  } catch (err) {
    log.error((err as Error).message);
  }
  const dir = checkSocketDirWritable(path, deps);
  if (dir.writable) {
    // A warning, not a refusal: dev tokens are what this proxy serves anyway,
    // but with-prod (which refuses) shares this mount.
    log.warn(
      `the gate socket's directory is writable from here (${dir.why}): a process running as you could replace the socket and relay prod approvals; ${READONLY_MOUNT_HINT}`,
    );
  }
}

/** Serves until SIGINT/SIGTERM. */
export async function runProxy(config: Config, log: Logger): Promise<number> {
  reportSocketTrust(config.socket_path, log, SYSTEM_SOCKET_TRUST_DEPS);
  // A metadata client gives up after ~3 s (Node) and retries a 503, so a
  // slow gate must fail fast rather than hold the client past its deadline.
  const gate = createGateClient({
    socketPath: config.socket_path,
    timeoutMs: 2500,
    // Checked before every connect: an ssh forward that comes back re-creates the socket.
    checkSocket: (p) => checkSocketTrust(p, SYSTEM_SOCKET_TRUST_DEPS),
  });
  const tokens = createTokenCache({ fetch: (scopes) => gate.token({ scopes }) });
  const ac = new AbortController();
  const handler = createMetadataHandler({
    tokens,
    gate,
    projectId: config.project_id,
    serviceAccount: config.service_account,
    zone: config.zone,
    log,
    signal: ac.signal,
  });
  const server = await startMetadataServer({
    port: config.port,
    handler,
    log,
    maxConnections: config.max_connections,
    idleTimeoutMs: config.idle_timeout_seconds * 1000,
    signal: ac.signal,
  });
  log.info(`ready: listening on http://127.0.0.1:${server.port}`, { gate: config.socket_path });
  const stop = (): void => ac.abort();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await server.finished;
  gate.close();
  return 0;
}

/** Runs the command line `args`; returns the exit code. */
export async function main(args: readonly string[]): Promise<number> {
  const inv = parseInvocation(PROXY_CLI, args);
  if (typeof inv === "number") return inv;
  const [cmd, ...rest] = inv.positionals;
  if (cmd === "env" && rest.length === 0) {
    printOut(envLines(inv.config.port));
    return 0;
  }
  if (cmd === "doctor") return await proxyDoctorCommand(inv.config, rest, inv.extras.json === true);
  if (cmd !== undefined) {
    throw new GateError(
      "usage",
      `unknown command ${
        JSON.stringify([cmd, ...rest].join(" ").slice(0, 80))
      }; expected no command, 'env' or 'doctor'`,
    );
  }
  const log = createLogger({
    level: inv.config.log_level,
    format: inv.config.log_format,
    name: "gcp-metadata-proxy",
  });
  return await runProxy(inv.config, log);
}

if (import.meta.main) await runMain("gcp-metadata-proxy", () => main(Deno.args));
