/**
 * gcp-kube-token: kubectl exec credential plugin. Prints an ExecCredential
 * holding the metadata proxy's token on stdout; on failure one line on stderr,
 * nothing on stdout, exit 1.
 *
 * Deliberately does not use shared/cli.ts (it pulls in the config loader and
 * its TOML parser): this runs on every kubectl call and must start fast.
 */
import { EXIT, GateError } from "../shared/errors.ts";
import { sanitizeMessage } from "../shared/redact.ts";
import { versionString } from "../shared/version.ts";
import {
  buildExecCredential,
  createDirectGet,
  execApiVersion,
  fetchMetadataToken,
  parseMetadataHost,
  type TokenDeps,
} from "./token.ts";

const PROGRAM = "gcp-kube-token";

const HELP =
  `${PROGRAM} ${versionString()} — kubectl exec credential plugin backed by gcp-metadata-proxy

Usage:
  ${PROGRAM}            print an ExecCredential for kubectl (run by kubectl, see gcp-kube-setup)

Environment:
  GCE_METADATA_HOST      metadata proxy host:port [default: 127.0.0.1:8173]
  KUBERNETES_EXEC_INFO   set by kubectl; its apiVersion is mirrored

Options:
  -h, --help            show this help
  --version             show the version`;

/** What the entry point reads from its environment. */
export interface TokenMainDeps extends TokenDeps {
  env: (name: string) => string | undefined;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** Runs the plugin; returns the exit code. */
export async function tokenMain(args: readonly string[], deps: TokenMainDeps): Promise<number> {
  const [first] = args;
  if (first === "-h" || first === "--help") {
    deps.stdout(HELP + "\n");
    return EXIT.OK;
  }
  if (first === "--version") {
    deps.stdout(`${PROGRAM} ${versionString()}\n`);
    return EXIT.OK;
  }
  if (first !== undefined) {
    deps.stderr(
      `${PROGRAM}: unexpected argument ${
        JSON.stringify(sanitizeMessage(first, 100))
      }; it takes none: remove "args" from the kubeconfig user's exec section\n`,
    );
    return EXIT.USAGE;
  }
  try {
    const host = parseMetadataHost(deps.env("GCE_METADATA_HOST"));
    const apiVersion = execApiVersion(deps.env("KUBERNETES_EXEC_INFO"));
    const token = await fetchMetadataToken(host, deps);
    // Only now write stdout: kubectl must see either a whole credential or nothing.
    deps.stdout(
      JSON.stringify(buildExecCredential(token.accessToken, apiVersion, deps.now())) + "\n",
    );
    return EXIT.OK;
  } catch (err) {
    let message: string;
    if (err instanceof GateError) message = err.message;
    else if (err instanceof Deno.errors.NotCapable) {
      message =
        "blocked by the sandbox: GCE_METADATA_HOST changed after the launcher started; run gcp-kube-token through its launcher";
    } else message = `internal error: ${(err as Error)?.message ?? String(err)}`;
    deps.stderr(`${PROGRAM}: ${sanitizeMessage(message, 1000)}\n`);
    return EXIT.FAILURE;
  }
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // not granted: counts as unset
  }
}

if (import.meta.main) {
  const enc = new TextEncoder();
  const code = await tokenMain(Deno.args, {
    env: readEnv,
    get: createDirectGet(),
    now: Date.now,
    stdout: (t) => Deno.stdout.writeSync(enc.encode(t)),
    stderr: (t) => Deno.stderr.writeSync(enc.encode(t)),
  });
  Deno.exit(code);
}
