/**
 * `gcp-gate pending`, `gcp-gate approve <id> [--yes]`, `gcp-gate deny <id>`:
 * decide queued prod requests from another terminal on the host, through the
 * running gate's admin socket.
 */
import { printError, printOut } from "../shared/cli.ts";
import type { Invocation } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import type { Logger } from "../shared/log.ts";
import { type AdminClient, createAdminClient } from "./admin_client.ts";
import type { PendingView } from "./admin_routes.ts";
import {
  COMMAND_LINES_SHOWN,
  describeRequest,
  LINE_CHARS_SHOWN,
  requestSummary,
} from "./approval/format.ts";
import type { ApprovalRequest } from "./approval/types.ts";
import { stripUnsafeChars } from "../shared/redact.ts";

/** Dependencies of the admin subcommands (real ones by default). */
export interface AdminCommandDeps {
  client: (socketPath: string) => AdminClient;
  /** One line from stdin; undefined at end of input. */
  readLine: () => Promise<string | undefined>;
  out: (text: string) => void;
  err: (text: string) => void;
}

async function readStdinLine(): Promise<string | undefined> {
  const decoder = new TextDecoder();
  let text = "";
  const reader = Deno.stdin.readable.getReader();
  try {
    while (text.length < 4096) {
      const { value, done } = await reader.read();
      if (done) return text === "" ? undefined : text;
      text += decoder.decode(value, { stream: true });
      const nl = text.indexOf("\n");
      if (nl >= 0) return text.slice(0, nl);
    }
    return text;
  } finally {
    reader.releaseLock();
  }
}

const REAL: AdminCommandDeps = {
  client: (socketPath) => createAdminClient({ socketPath }),
  readLine: readStdinLine,
  out: printOut,
  err: (text) => printError("gcp-gate", text),
};

function toRequest(p: PendingView): ApprovalRequest {
  return {
    id: p.id,
    kind: p.kind,
    email: p.email,
    project: p.project ?? undefined,
    scopes: p.scopes,
    ttlSeconds: p.ttl_seconds,
    reason: p.reason ?? undefined,
    command: p.command ?? undefined,
    notes: p.notes,
    // An older gate's listing has neither field: no code, and (safest
    // reading) the engineer's own credentials.
    code: p.code ?? undefined,
    from: p.from ?? undefined,
    serviceAccount: p.service_account ?? undefined,
    grants: p.grants ?? undefined,
    profile: p.profile ?? undefined,
  };
}

function describe(p: PendingView): string {
  return [
    `${p.id}${
      p.profile ? `  [profile ${stripUnsafeChars(p.profile)}]` : ""
    }  (waiting ${p.age_seconds} s, expires in ${p.expires_in} s)`,
    // Capped like the dialog: a long command must not scroll the facts away.
    ...describeRequest(toRequest(p), {
      maxCommandLines: COMMAND_LINES_SHOWN,
      maxLineChars: LINE_CHARS_SHOWN,
    }).map((l) => `  ${l}`),
  ].join("\n");
}

function expectArgs(name: string, args: readonly string[], count: number, usage: string): void {
  if (args.length !== count) {
    throw new GateError("usage", `gcp-gate ${name} takes ${usage}`);
  }
}

/** `gcp-gate pending`: lists waiting prod requests on stdout. */
export async function pendingCommand(
  inv: Invocation,
  args: readonly string[],
  _log: Logger,
  deps: AdminCommandDeps = REAL,
): Promise<number> {
  expectArgs("pending", args, 0, "no arguments");
  const client = deps.client(inv.config.admin_socket_path);
  try {
    const { pending } = await client.pending();
    if (pending.length === 0) {
      deps.out("No prod request is waiting for approval.");
      return 0;
    }
    deps.out(pending.map(describe).join("\n\n"));
    deps.out(`\nDecide with: gcp-gate approve <id>   or   gcp-gate deny <id>`);
    return 0;
  } finally {
    client.close();
  }
}

async function findPending(client: AdminClient, id: string): Promise<PendingView> {
  const { pending } = await client.pending();
  const found = pending.find((p) => p.id === id);
  if (!found) {
    const ids = pending.map((p) => p.id).join(", ");
    throw new GateError(
      "not_found",
      `no prod request ${JSON.stringify(id)} is waiting${
        ids ? ` (waiting: ${ids})` : " (none is)"
      }; run gcp-gate pending`,
    );
  }
  return found;
}

/** `gcp-gate approve <id> [--yes]`: shows the request, asks for "yes", approves it. */
export async function approveCommand(
  inv: Invocation,
  args: readonly string[],
  _log: Logger,
  deps: AdminCommandDeps = REAL,
): Promise<number> {
  expectArgs("approve", args, 1, "one request id: gcp-gate approve <id> [--yes]");
  const id = args[0]!;
  const client = deps.client(inv.config.admin_socket_path);
  try {
    const p = await findPending(client, id);
    deps.out(describe(p));
    if (inv.extras.yes !== true) {
      // The question repeats the facts (and the code) right above the answer.
      deps.err(`type "yes" to approve ${requestSummary(toRequest(p))} (anything else cancels):`);
      const answer = await deps.readLine();
      if (answer?.trim().toLowerCase() !== "yes") {
        deps.err(`not approved: you did not type "yes"; request ${id} is still waiting`);
        return 1;
      }
    }
    await client.decide(id, true);
    deps.out(`approved prod request ${id}`);
    return 0;
  } finally {
    client.close();
  }
}

/** `gcp-gate deny <id>`: denies a waiting request (no confirmation: denying is always safe). */
export async function denyCommand(
  inv: Invocation,
  args: readonly string[],
  _log: Logger,
  deps: AdminCommandDeps = REAL,
): Promise<number> {
  expectArgs("deny", args, 1, "one request id: gcp-gate deny <id>");
  const id = args[0]!;
  const client = deps.client(inv.config.admin_socket_path);
  try {
    await client.decide(id, false);
    deps.out(`denied prod request ${id}`);
    return 0;
  } finally {
    client.close();
  }
}
