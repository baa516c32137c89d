/** gcp-metadata-proxy: entry point. */
import { parseInvocation, printOut, runMain } from "../shared/cli.ts";
import type { Config } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import { createGateClient } from "../shared/gate_client.ts";
import { createLogger, type Logger } from "../shared/log.ts";
import { createMetadataHandler } from "../shared/metadata/handler.ts";
import { createTokenCache } from "../shared/metadata/token_cache.ts";
import { PROXY_CLI } from "./cli.ts";

/** The lines `gcp-metadata-proxy env` prints. */
export function envLines(port: number): string {
  const hostPort = `127.0.0.1:${port}`;
  return [
    `export GCE_METADATA_HOST=${hostPort}`,
    `export GCE_METADATA_IP=${hostPort}`,
    `export GCE_METADATA_ROOT=${hostPort}`,
    `export NO_PROXY=127.0.0.1,localhost\${NO_PROXY:+,\$NO_PROXY}`,
  ].join("\n");
}

/** Serves until SIGINT/SIGTERM. */
export async function runProxy(config: Config, log: Logger): Promise<number> {
  const gate = createGateClient({ socketPath: config.socket_path, timeoutMs: 10_000 });
  const tokens = createTokenCache({ fetch: (scopes) => gate.token({ scopes }) });
  const handler = createMetadataHandler({
    tokens,
    projectId: config.project_id,
    serviceAccount: config.service_account,
  });
  const ac = new AbortController();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: config.port,
    signal: ac.signal,
    onListen: (addr) => log.info(`ready: listening on http://127.0.0.1:${addr.port}`),
  }, handler);
  const stop = (): void => ac.abort();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await server.finished;
  gate.close();
  return 0;
}

export async function main(args: readonly string[]): Promise<number> {
  const inv = parseInvocation(PROXY_CLI, args);
  if (typeof inv === "number") return inv;
  const [cmd, ...rest] = inv.positionals;
  if (cmd === "env") {
    printOut(envLines(inv.config.port));
    return 0;
  }
  if (cmd !== undefined || rest.length > 0) {
    throw new GateError(
      "usage",
      `unknown command ${JSON.stringify(cmd)}; expected no command or 'env'`,
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
