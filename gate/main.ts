/**
 * gcp-gate: entry point. Parses args, loads config, dispatches to the daemon
 * or a subcommand; errors become exit codes in runMain.
 */
import { parseInvocation, readEnv, runMain } from "../shared/cli.ts";
import type { Config, Invocation } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import { createLogger, type Logger } from "../shared/log.ts";
import { accountsCommand } from "./accounts.ts";
import { approveCommand, denyCommand, pendingCommand } from "./admin_commands.ts";
import { auditCommand } from "./audit_command.ts";
import { startAdminServer } from "./admin_server.ts";
import { createApprover } from "./approval/chain.ts";
import { type ApprovalQueue, createApprovalQueue } from "./approval/queue.ts";
import type { Approver } from "./approval/types.ts";
import { GATE_CLI } from "./cli.ts";
import { doctorCommand } from "./doctor.ts";
import { canCommand } from "./can.ts";
import { installService } from "./install_service.ts";
import { sshConfigCommand } from "./ssh_config.ts";
import { runGate } from "./daemon.ts";

/** The approver for prod requests: the one place that chooses it. */
function approverFor(config: Config, log: Logger, queue: ApprovalQueue): Approver {
  return createApprover(config, { log, queue, env: readEnv });
}

/** A subcommand: `gcp-gate <name> …`. */
type Subcommand = (inv: Invocation, args: readonly string[], log: Logger) => Promise<number>;

/** Subcommands by name (each lives in its own file). */
const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = {
  "install-service": installService,
  pending: pendingCommand,
  approve: approveCommand,
  deny: denyCommand,
  doctor: doctorCommand,
  accounts: (inv, args, log) => accountsCommand(inv, args, log),
  can: (inv, args, log) => canCommand(inv, args, log),
  "ssh-config": sshConfigCommand,
  audit: auditCommand,
};

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
  if (cmd === undefined) {
    // The admin socket lives beside the gate's: queued prod requests are decided there.
    const queue = createApprovalQueue({ timeoutSeconds: inv.config.approval_timeout_seconds, log });
    const admin = await startAdminServer({
      socketPath: inv.config.admin_socket_path,
      gateSocketPath: inv.config.socket_path,
      queue,
      log,
    });
    try {
      return await runGate(inv.config, log, { approver: approverFor(inv.config, log, queue) });
    } finally {
      await admin.shutdown();
    }
  }
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
