import type { CliSpec } from "../shared/config.ts";

/** The gate's command line. */
export const GATE_CLI: CliSpec = {
  role: "gcp-gate",
  summary: "host daemon that holds your Google credentials and mints short-lived tokens",
  usage: ["[options]                 run the gate"],
  positionals: true,
  loadsConfig: true,
};
