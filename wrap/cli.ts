import type { CliSpec } from "../shared/config.ts";

/** with-prod's command line. `--scopes` is the config key `scopes`. */
export const WRAP_CLI: CliSpec = {
  role: "with-prod",
  summary: "run one command with approved production credentials that nothing else can use",
  usage: [
    '[--reason "…"] [--project P] [--scopes S,…] [-e K=V]… -- <command> [args…]',
  ],
  extras: {
    reason: { type: "string", help: "why you need prod access (shown to the approver)" },
    project: {
      type: "string",
      help: "project to ask access for (default: project_id)",
    },
    env: {
      type: "string",
      short: "e",
      multiple: true,
      help: "set K=V in the command's environment (${VAR} and ${VAR:-default} expand)",
    },
  },
  positionals: false,
  loadsConfig: true,
};
