/**
 * gcp-gate: entry point. Parses args, loads config, dispatches to the daemon
 * or a subcommand; errors become exit codes in runMain.
 */
import { parseInvocation, readTextFileIfExists, runMain } from "../shared/cli.ts";
import type { Config, Invocation } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import { createLogger, type Logger } from "../shared/log.ts";
import { versionString } from "../shared/version.ts";
import { loadSourceCredential, type SourceCredential } from "./adc.ts";
import { GATE_CLI } from "./cli.ts";
import { createGoogleApi } from "./google_api.ts";
import { createGateHandler } from "./routes.ts";
import { startGateServer } from "./server.ts";
import { createDevTokenMinter } from "./tokens.ts";

/** Runs the gate daemon until SIGINT/SIGTERM. */
export async function runGate(config: Config, log: Logger): Promise<number> {
  const api = createGoogleApi({ endpoints: config.endpoints });
  let source: SourceCredential | undefined;
  const adcDeps = { readFile: readTextFileIfExists, hostname: () => Deno.hostname() };
  const getSource = (): SourceCredential => (source ??= loadSourceCredential(config, adcDeps));
  // Report missing ADC early, but keep serving: a later login fixes it without a restart.
  try {
    getSource();
  } catch (err) {
    log.warn((err as Error).message);
  }
  const tokens = createDevTokenMinter({
    api,
    source: getSource,
    serviceAccount: config.service_account,
  });
  const handler = createGateHandler({
    tokens,
    log,
    version: versionString(),
    maxTokenTtlSeconds: config.max_token_ttl_seconds,
    startedAt: Date.now(),
  });
  const server = await startGateServer({ socketPath: config.socket_path, handler, log });
  const stop = (): void => {
    log.info("shutting down");
    void server.shutdown();
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await server.finished;
  await server.shutdown();
  return 0;
}

/** A subcommand: `gcp-gate <name> …`. */
type Subcommand = (inv: Invocation, args: readonly string[], log: Logger) => Promise<number>;

/** Subcommands by name (each lives in its own file). */
const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = {};

/** The gate's main: returns the exit code. */
export async function main(args: readonly string[]): Promise<number> {
  const inv = parseInvocation(GATE_CLI, args);
  if (typeof inv === "number") return inv;
  const log = createLogger({
    level: inv.config.log_level,
    format: inv.config.log_format,
    name: "gcp-gate",
  });
  const [cmd, ...rest] = inv.positionals;
  if (cmd === undefined) return await runGate(inv.config, log);
  const sub = SUBCOMMANDS[cmd];
  if (!sub) {
    throw new GateError(
      "usage",
      `unknown command ${JSON.stringify(cmd)}; known: ${
        Object.keys(SUBCOMMANDS).join(", ") || "none"
      }`,
    );
  }
  return await sub(inv, rest, log);
}

if (import.meta.main) await runMain("gcp-gate", () => main(Deno.args));
