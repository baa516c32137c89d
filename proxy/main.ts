/** gcp-metadata-proxy: entry point. */
import { parseInvocation, printOut, runMain } from "../shared/cli.ts";
import type { Config } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import { createGateClient } from "../shared/gate_client.ts";
import { createLogger, type Logger } from "../shared/log.ts";
import { createMetadataHandler } from "../shared/metadata/handler.ts";
import { startMetadataServer } from "../shared/metadata/server.ts";
import { createTokenCache } from "../shared/metadata/token_cache.ts";
import { PROXY_CLI } from "./cli.ts";
import { envLines } from "./env.ts";

/** Serves until SIGINT/SIGTERM. */
export async function runProxy(config: Config, log: Logger): Promise<number> {
  // A metadata client gives up after ~3 s (Node) and retries a 503, so a
  // slow gate must fail fast rather than hold the client past its deadline.
  const gate = createGateClient({ socketPath: config.socket_path, timeoutMs: 2500 });
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
  if (cmd !== undefined) {
    throw new GateError(
      "usage",
      `unknown command ${
        JSON.stringify([cmd, ...rest].join(" ").slice(0, 80))
      }; expected no command or 'env'`,
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
