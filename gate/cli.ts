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
    "ssh-config <host> [--remote-socket P]   print the ~/.ssh/config stanza forwarding the gate to <host>",
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
  },
  positionals: true,
  loadsConfig: true,
};
