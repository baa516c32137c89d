/**
 * gcp-gate: entry point. Parses args, loads config, dispatches to the daemon
 * or a subcommand; errors become exit codes in runMain.
 */
import { parseInvocation, readEnv, readTextFileIfExists, runMain } from "../shared/cli.ts";
import { type Config, type Invocation, loadInvocation } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import { createLogger, type Logger } from "../shared/log.ts";
import { accountsCommand } from "./accounts.ts";
import { approveCommand, denyCommand, pendingCommand } from "./admin_commands.ts";
import { auditCommand } from "./audit_command.ts";
import { startAdminServer } from "./admin_server.ts";
import { createApprover, realTerminal } from "./approval/chain.ts";
import type { TerminalDeps } from "./approval/terminal.ts";
import { type ApprovalQueue, createApprovalQueue } from "./approval/queue.ts";
import type { Approver } from "./approval/types.ts";
import type { ApprovalRateLimiter } from "./rate_limit.ts";
import { GATE_CLI } from "./cli.ts";
import { doctorCommand } from "./doctor.ts";
import { canCommand } from "./can.ts";
import { installService } from "./install_service.ts";
import { sshConfigCommand } from "./ssh_config.ts";
import { runGate } from "./daemon.ts";
import type { ControlSlot } from "./control.ts";
import { type Profile, resolveProfiles } from "./profiles.ts";
import { reloadCommand, statusCommand } from "./status.ts";

/** One terminal for every profile's prompts, one prompt at a time. */
function sharedTerminal(): {
  terminal: () => TerminalDeps;
  turn: <T>(prompt: () => Promise<T>) => Promise<T>;
} {
  let terminal: TerminalDeps | undefined;
  let last: Promise<unknown> = Promise.resolve();
  return {
    // Created on first use: it starts reading stdin.
    terminal: () => terminal ??= realTerminal(),
    turn: (prompt) => {
      const mine = last.then(prompt, prompt);
      last = mine.catch(() => {});
      return mine;
    },
  };
}

/** The approver for one profile's prod requests: the one place that chooses it. */
function approverFor(
  config: Config,
  profile: Profile,
  log: Logger,
  queue: ApprovalQueue,
  shared: ReturnType<typeof sharedTerminal> & { limiter: ApprovalRateLimiter },
): Approver {
  const settings = { ...config, ...profile };
  return createApprover(settings, {
    log,
    queue,
    // The profile's limiter outlives this chain (a reload keeps its state).
    limiter: shared.limiter,
    env: readEnv,
    ...(settings.approval_methods.includes("terminal")
      ? { terminal: shared.terminal(), terminalTurn: shared.turn }
      : {}),
  });
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
  status: statusCommand,
  reload: reloadCommand,
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
    const config = inv.config;
    const queue = createApprovalQueue({ timeoutSeconds: config.approval_timeout_seconds, log });
    const control: ControlSlot = { current: undefined };
    const terminal = sharedTerminal();
    const admin = await startAdminServer({
      socketPath: config.admin_socket_path,
      // resolveProfiles checks every profile's socket against the admin socket too.
      gateSocketPath: resolveProfiles(config)[0]!.socket_path,
      queue,
      log,
      control,
    });
    try {
      return await runGate(config, log, {
        approverFor: (profile, limiter) =>
          approverFor(config, profile, log, queue, { ...terminal, limiter }),
        reloadConfig: () =>
          loadInvocation(GATE_CLI, args, {
            env: readEnv,
            readTextFile: readTextFileIfExists,
            cwd: () => Deno.cwd(),
          }).config,
        control,
      });
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
