/**
 * with-prod: entry point. `with-prod [options] -- <command> [args…]` runs one
 * command with approved prod credentials; see README, section with-prod.
 */
import { parseInvocation, runMain } from "../shared/cli.ts";
import { GateError } from "../shared/errors.ts";
import { createLogger } from "../shared/log.ts";
import { WRAP_CLI } from "./cli.ts";
import { runWithProd } from "./run.ts";

/** Splits at the first `--`: with-prod's options before, the command after. */
export function splitCommand(args: readonly string[]): { own: string[]; command: string[] } {
  const i = args.indexOf("--");
  return i < 0
    ? { own: [...args], command: [] }
    : { own: args.slice(0, i), command: args.slice(i + 1) };
}

/** Runs the command line `args`; returns the exit code. */
export async function main(args: readonly string[]): Promise<number> {
  const { own, command } = splitCommand(args);
  const inv = parseInvocation(WRAP_CLI, own);
  if (typeof inv === "number") return inv;
  if (command.length === 0) {
    throw new GateError(
      "usage",
      "no command given; usage: with-prod [options] -- <command> [args…]",
    );
  }
  const { reason, project, env } = inv.extras;
  const log = createLogger({
    level: inv.config.log_level,
    format: inv.config.log_format,
    name: "with-prod",
  });
  return await runWithProd({
    config: inv.config,
    command,
    reason: typeof reason === "string" ? reason : undefined,
    project: typeof project === "string" ? project : inv.config.project_id,
    extras: Array.isArray(env) ? env : [],
  }, log);
}

if (import.meta.main) await runMain("with-prod", () => main(Deno.args));
