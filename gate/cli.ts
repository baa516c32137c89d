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
    "doctor [--json]           check this host's setup (exit 0 pass, 1 fail, 3 warnings)",
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
    json: { type: "boolean", help: "doctor: print the report as one JSON object" },
  },
  positionals: true,
  loadsConfig: true,
};
