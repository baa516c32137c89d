import type { CliSpec } from "../shared/config.ts";

/** The metadata proxy's command line. */
export const PROXY_CLI: CliSpec = {
  role: "gcp-metadata-proxy",
  summary: "GCE metadata server emulator that serves tokens from gcp-gate",
  usage: [
    "[options]        serve on 127.0.0.1:<port>",
    "env [options]    print the variables to export",
    "doctor [--json]  check this container's setup (exit 0 pass, 1 fail, 3 warnings)",
  ],
  extras: {
    json: { type: "boolean", help: "doctor: print the report as one JSON object" },
  },
  positionals: true,
  loadsConfig: true,
};
