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
    "status [--json]           each profile: socket, listening, accounts, token lifetimes left, sessions, pending",
    "reload                    re-read the config (as SIGHUP does); a bad config is refused, profiles keep serving",
    "doctor [--json]           check this host's setup (exit 0 pass, 1 fail, 3 warnings)",
    "accounts [--project P] [--json]   service accounts you can impersonate (dev/prod marked)",
    "can <permission>… --resource <full resource name> [--as dev|prod|me] [--json]   which permissions are held (exit 1 if any is not)",
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
    project: { type: "string", help: "accounts: the project to list (default: project_id)" },
    resource: {
      type: "string",
      help: "can: full resource name, e.g. //storage.googleapis.com/projects/_/buckets/B",
    },
    as: { type: "string", help: "can: whose permissions: dev (default), prod or me" },
    json: { type: "boolean", help: "doctor, accounts, can, status: print JSON" },
  },
  positionals: true,
  loadsConfig: true,
};
