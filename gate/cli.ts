import type { CliSpec } from "../shared/config.ts";

/** The gate's command line. */
export const GATE_CLI: CliSpec = {
  role: "gcp-gate",
  summary: "host daemon that holds your Google credentials and mints short-lived tokens",
  usage: [
    "[options]                 run the gate",
    "install-service [--print] [--yes]   write a systemd user unit / launchd agent for the gate",
    "pending                   list prod requests waiting in the approval queue",
    "approve <id> [--yes]      approve a queued prod request (asks you to type yes)",
    "deny <id>                 deny a queued prod request",
    "audit [--since 1h] [--result denied] [--session <prefix>] [--json] [--follow]   read the audit log",
    "audit verify [--json]     check the audit log's hash chain (exit 1: changed, removed or inserted lines)",
  ],
  extras: {
    print: {
      type: "boolean",
      help: "install-service: show the service file instead of writing it",
    },
    yes: {
      type: "boolean",
      help: "install-service: replace an existing service file; approve: skip typing yes",
    },
    since: {
      type: "string",
      help: "audit: only events since a duration ago (90s, 15m, 1h, 7d) or a date",
    },
    result: {
      type: "string",
      help: "audit: only these results (granted,denied,error,rate_limited,revoked,refused)",
    },
    session: {
      type: "string",
      help: "audit: only events of sessions starting with this id prefix",
    },
    follow: { type: "boolean", help: "audit: keep printing new events as they are written" },
    json: { type: "boolean", help: "audit, audit verify: JSON lines instead of text" },
  },
  positionals: true,
  loadsConfig: true,
};
