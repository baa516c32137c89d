/**
 * `gcp-gate status [--json]` and `gcp-gate reload`: ask the running gate,
 * over its admin socket, what each profile serves, or to re-read its config.
 * Lifetimes only, never a token: the output may be pasted into a bug report.
 */
import { printError, printOut } from "../shared/cli.ts";
import type { Invocation } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import type { Logger } from "../shared/log.ts";
import { stripUnsafeChars } from "../shared/redact.ts";
import { type AdminClient, createAdminClient } from "./admin_client.ts";
import { formatDuration } from "./approval/format.ts";
import type { GateStatus } from "./control.ts";

/** Dependencies of the status/reload subcommands. */
export interface StatusCommandDeps {
  client: (socketPath: string) => AdminClient;
  out: (text: string) => void;
  err: (text: string) => void;
}

const REAL: StatusCommandDeps = {
  client: (socketPath) => createAdminClient({ socketPath }),
  out: printOut,
  err: (text) => printError("gcp-gate", text),
};

/** The status as text, one block per profile. */
export function formatStatus(status: GateStatus): string {
  const c = (s: string | null): string => s === null ? "(none)" : stripUnsafeChars(s);
  const blocks = status.profiles.map((p) => {
    const lines = [
      `profile ${c(p.name)}: ${p.listening ? "listening" : "NOT listening"} on ${c(p.socket_path)}`,
      `  connections:  ${p.connections.open} open (at most ${p.connections.max})`,
      `  project:      ${c(p.project)}`,
      `  dev account:  ${c(p.service_account)}`,
      `  prod account: ${
        p.prod_service_account === null ? "(your own ADC)" : c(p.prod_service_account)
      }`,
      `  dev tokens:   ${
        p.dev_tokens.length === 0
          ? "none cached"
          : p.dev_tokens.map((t) => `${formatDuration(t.expires_in)} left`).join(", ")
      }`,
      `  sessions:     ${
        p.sessions.length === 0
          ? "none open"
          : p.sessions.map((s) => `${c(s.id_prefix)}… ${formatDuration(s.expires_in)} left`).join(
            ", ",
          )
      }`,
      `  pending:      ${
        p.pending.length === 0
          ? "none"
          : p.pending.map((x) => `${c(x.id)} (expires in ${x.expires_in} s)`).join(", ")
      }`,
    ];
    return lines.join("\n");
  });
  return [`config: ${c(status.config_file)}`, ...blocks].join("\n\n");
}

/** `gcp-gate status [--json]`. */
export async function statusCommand(
  inv: Invocation,
  args: readonly string[],
  _log: Logger,
  deps: StatusCommandDeps = REAL,
): Promise<number> {
  if (args.length !== 0) throw new GateError("usage", "gcp-gate status takes no arguments");
  const client = deps.client(inv.config.admin_socket_path);
  try {
    const status = await client.status();
    deps.out(inv.extras.json === true ? JSON.stringify(status, null, 2) : formatStatus(status));
    return 0;
  } finally {
    client.close();
  }
}

/** `gcp-gate reload`: exit 0 when applied, 2 (config error, printed) when refused. */
export async function reloadCommand(
  inv: Invocation,
  args: readonly string[],
  _log: Logger,
  deps: StatusCommandDeps = REAL,
): Promise<number> {
  if (args.length !== 0) throw new GateError("usage", "gcp-gate reload takes no arguments");
  const client = deps.client(inv.config.admin_socket_path);
  try {
    const r = await client.reload();
    const list = (xs: string[]): string => xs.length === 0 ? "none" : xs.join(", ");
    deps.out(
      `reloaded: started ${list(r.started)}; stopped ${list(r.stopped)}; updated ${
        list(r.updated)
      }`,
    );
    if (r.needs_restart.length > 0) {
      deps.err(`changed but applied only after a restart: ${r.needs_restart.join(", ")}`);
    }
    return 0;
  } finally {
    client.close();
  }
}
