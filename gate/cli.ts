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
    "ssh-config <host> [--remote-socket P]   print the ~/.ssh/config stanza forwarding the gate to <host>",
    "audit [--since 1h] [--result denied] [--session <prefix>] [--json] [--follow]   read the audit log",
    "audit verify [--json]     check the audit log's hash chain (exit 1: changed, removed or inserted lines)",
  ],
  extras: {
    print: {
      type: "boolean",
      help: "install-service: show the service file instead of writing it",
    },
    "remote-socket": {
      type: "string",
      help: "ssh-config: the socket path on the remote host (default /home/%r/.gcp-gate/gate.sock)",
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
    since: {
      type: "string",
      help: "audit: only events since a duration ago (90s, 15m, 1h, 7d) or a date",
    },
    result: {
      type: "string",
      help:
        "audit: only these results (granted,denied,withdrawn,error,rate_limited,revoked,refused)",
    },
    session: {
      type: "string",
      help: "audit: only events of sessions starting with this id prefix",
    },
    follow: { type: "boolean", help: "audit: keep printing new events as they are written" },
    json: {
      type: "boolean",
      help: "doctor, accounts, can, audit, audit verify, status: print JSON instead of text",
    },
  },
  positionals: true,
  loadsConfig: true,
};
