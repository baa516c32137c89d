/**
 * The approval chain: the first available method asks the human (dialog →
 * terminal → queue, as configured in approval_methods); when none is
 * available the request is refused with a message naming each method and why
 * it could not be used. Rate limits are applied before anyone is asked.
 */
import type { Config } from "../../shared/config.ts";
import { GateError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/log.ts";
import { type ApprovalRateLimiter, createApprovalRateLimiter } from "../rate_limit.ts";
import { createDialogStep } from "./dialog.ts";
import type { ApprovalStep, MethodOutcome } from "./method.ts";
import type { ApprovalQueue } from "./queue.ts";
import { type RunCommand, runCommand } from "./run_command.ts";
import { createStreamLineReader, createTerminalStep, type TerminalDeps } from "./terminal.ts";
import type { ApprovalDecision, ApprovalRequest, Approver } from "./types.ts";

/** The config keys the chain reads. */
export type ApproverConfig = Pick<
  Config,
  | "approval_methods"
  | "dialog_timeout_seconds"
  | "denial_cooldown_seconds"
  | "max_approvals_per_minute"
  | "zenity_path"
  | "osascript_path"
>;

/** Dependencies of {@linkcode createApprover}; each has a real default but `log` and `queue`. */
export interface ApproverDeps {
  log: Logger;
  /** Shared with the admin server, which decides queued requests. */
  queue: ApprovalQueue;
  /** Reads DISPLAY / WAYLAND_DISPLAY. */
  env?: (name: string) => string | undefined;
  os?: typeof Deno.build.os;
  run?: RunCommand;
  terminal?: TerminalDeps;
  /**
   * Runs one terminal prompt at a time when several approvers (profiles)
   * share the terminal: two prompts reading the same stdin could hand an
   * answer meant for one request to another.
   */
  terminalTurn?: <T>(prompt: () => Promise<T>) => Promise<T>;
  limiter?: ApprovalRateLimiter;
  now?: () => number;
}

const encoder = new TextEncoder();

/** The gate's own terminal, when stdin and stderr are one (create it once: it reads stdin). */
export function realTerminal(): TerminalDeps {
  const isTerminal = (): boolean => Deno.stdin.isTerminal() && Deno.stderr.isTerminal();
  return {
    isTerminal,
    write: (text) => Deno.stderr.writeSync(encoder.encode(text)),
    lines: isTerminal() ? createStreamLineReader(Deno.stdin.readable) : {
      discard: () => {},
      next: () => Promise.resolve(undefined),
    },
  };
}

function decision(step: ApprovalStep, outcome: MethodOutcome): ApprovalDecision {
  return { approved: outcome.kind === "approved", method: step.name, detail: outcome.detail };
}

/** Creates the gate's approver from config. */
export function createApprover(config: ApproverConfig, deps: ApproverDeps): Approver {
  const now = deps.now ?? Date.now;
  const limiter = deps.limiter ?? createApprovalRateLimiter({
    cooldownSeconds: config.denial_cooldown_seconds,
    maxPerMinute: config.max_approvals_per_minute,
    now,
  });
  const all: Record<ApprovalStep["name"], () => ApprovalStep> = {
    dialog: () =>
      createDialogStep({
        zenityPath: config.zenity_path,
        osascriptPath: config.osascript_path,
        timeoutSeconds: config.dialog_timeout_seconds,
      }, {
        run: deps.run ?? runCommand,
        env: deps.env ?? (() => undefined),
        os: deps.os ?? Deno.build.os,
        now,
      }),
    terminal: () => {
      const step = createTerminalStep(
        { timeoutSeconds: config.dialog_timeout_seconds },
        { ...(deps.terminal ?? realTerminal()), now },
      );
      const turn = deps.terminalTurn;
      return turn ? { ...step, ask: (req, ctx) => turn(() => step.ask(req, ctx)) } : step;
    },
    queue: () => deps.queue.step,
  };
  const steps = config.approval_methods.map((m) => all[m]());
  const disabled = (["dialog", "terminal", "queue"] as const).filter((m) =>
    !config.approval_methods.includes(m)
  );

  async function run(req: ApprovalRequest, signal: AbortSignal): Promise<ApprovalDecision> {
    const permit = limiter.acquire(req.id);
    let outcome: MethodOutcome["kind"] = "denied";
    try {
      const tried: string[] = [];
      for (const step of steps) {
        if (signal.aborted) {
          outcome = "cancelled";
          return { approved: false, method: step.name, detail: "the asking client disconnected" };
        }
        const result = await step.ask(req, { signal, setDeadline: (t) => permit.setDeadline(t) });
        if (result.kind === "unavailable") {
          deps.log.debug(`approval method ${step.name} unavailable: ${result.detail}`);
          tried.push(`${step.name}: ${result.detail}`);
          continue;
        }
        outcome = result.kind;
        deps.log.info(`prod request ${req.id}: ${result.kind} (${result.detail})`, {
          method: step.name,
        });
        return decision(step, result);
      }
      const off = disabled.length > 0
        ? ` (not enabled in approval_methods: ${disabled.join(", ")})`
        : "";
      throw new GateError(
        "approval_unavailable",
        `prod access needs a human, but no approval method is available — ${
          tried.join("; ")
        }${off}. Run gcp-gate in a desktop session or a terminal, or enable the queue (approval_methods) and use 'gcp-gate approve'`,
      );
    } finally {
      permit.release(
        outcome === "approved" ? "approved" : outcome === "cancelled" ? "cancelled" : "denied",
      );
    }
  }

  return { decide: run };
}
