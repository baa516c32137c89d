/** gcp-kube-setup: entry point. */
import { parseInvocation, printOut, runMain } from "../shared/cli.ts";
import { createLogger } from "../shared/log.ts";
import { KUBE_SETUP_CLI } from "./setup_cli.ts";
import { runSetup, tokenCommandPath } from "./setup.ts";

export function main(args: readonly string[]): Promise<number> {
  const inv = parseInvocation(KUBE_SETUP_CLI, args);
  if (typeof inv === "number") return Promise.resolve(inv);
  const log = createLogger({
    level: inv.config.log_level,
    format: inv.config.log_format,
    name: KUBE_SETUP_CLI.role,
  });
  return Promise.resolve(runSetup({
    kubeconfig: inv.config.kubeconfig,
    dryRun: inv.extras["dry-run"] === true,
    revert: inv.extras.revert === true,
    tokenCommand: tokenCommandPath(import.meta.url, Deno.execPath()),
  }, { log, stdout: (t) => printOut(t) }));
}

if (import.meta.main) await runMain(KUBE_SETUP_CLI.role, () => main(Deno.args));
