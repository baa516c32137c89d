import type { CliSpec } from "../shared/config.ts";

/** The metadata proxy's command line. */
export const PROXY_CLI: CliSpec = {
  role: "gcp-metadata-proxy",
  summary: "GCE metadata server emulator that serves tokens from gcp-gate",
  usage: [
    "[options]        serve on 127.0.0.1:<port>",
    "env [options]    print the variables to export",
  ],
  positionals: true,
  loadsConfig: true,
};
