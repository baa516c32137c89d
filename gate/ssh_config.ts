/**
 * `gcp-gate ssh-config <host> [--remote-socket PATH]`: the ~/.ssh/config
 * stanza that forwards the gate's socket to a remote host over OpenSSH, and
 * what the remote side needs. No new listener on the laptop: ssh's own
 * Unix-socket forwarding carries the requests, authenticated and encrypted by
 * ssh. See docs/remote.md.
 */
import { printOut } from "../shared/cli.ts";
import type { Invocation } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import type { Logger } from "../shared/log.ts";

/**
 * Default socket path on the remote host. `%r` is ssh's token for the remote
 * user name (expanded in RemoteForward paths), so one stanza works for any
 * account whose home is /home/<user>.
 */
export const DEFAULT_REMOTE_SOCKET = "/home/%r/.gcp-gate/gate.sock";
/** Where the Feature expects the socket directory inside the container. */
export const CONTAINER_SOCKET_DIR = "/run/gcp-gate";

/** Options for {@linkcode sshConfigStanza}. */
export interface SshConfigOptions {
  /** The Host pattern (as typed after `ssh`). */
  readonly host: string;
  /** The gate's socket on this machine. */
  readonly localSocket: string;
  /** Where sshd creates the forwarded socket on the remote host (absolute). */
  readonly remoteSocket: string;
}

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

/**
 * Host names and ssh-config paths become lines of a config file: refuse
 * anything that could end a line, start a comment or split an argument.
 */
function checkToken(what: string, value: string, re: RegExp): void {
  if (!re.test(value)) {
    throw new GateError(
      "usage",
      `${what} ${JSON.stringify(value.slice(0, 80))} is not usable in ~/.ssh/config (${
        what === "host" ? "letters, digits, . - _ * ? only" : "an absolute path without spaces"
      })`,
    );
  }
}

/** The stanza and the remote-side notes, as printed. */
export function sshConfigStanza(o: SshConfigOptions): string {
  checkToken("host", o.host, /^[A-Za-z0-9._*?-]{1,253}$/);
  checkToken("remote socket", o.remoteSocket, /^\/[A-Za-z0-9._%/+-]{1,200}$/);
  checkToken("local socket", o.localSocket, /^\/[A-Za-z0-9._/+-]{1,200}$/);
  const remoteDir = dirname(o.remoteSocket);
  const shownDir = remoteDir.replaceAll("%r", "<remote user>");
  return [
    `# gcp-gate: forward the gate socket to ${o.host} (add to ~/.ssh/config on this machine)`,
    `Host ${o.host}`,
    `  RemoteForward ${o.remoteSocket} ${o.localSocket}`,
    `  StreamLocalBindUnlink yes`,
    `  ExitOnForwardFailure yes`,
    `  ServerAliveInterval 15`,
    `  ServerAliveCountMax 3`,
    ``,
    `# On ${o.host}, once:`,
    `#   mkdir -m 700 -p ${shownDir.replace(/^\/home\/<remote user>/, "~")}`,
    `#   sshd_config: StreamLocalBindUnlink yes   (sshd replaces the socket a dropped session left;`,
    `#   without it the next ssh fails: ExitOnForwardFailure). Keep sshd's StreamLocalBindMask 0177.`,
    `# The container mounts that directory READ-ONLY (string form: the object form drops readonly):`,
    `#   "mounts": ["type=bind,source=${shownDir},target=${CONTAINER_SOCKET_DIR},readonly"]`,
    `# and uses socket_path = "${CONTAINER_SOCKET_DIR}/gate.sock" (the Feature's default).`,
  ].join("\n");
}

/** `gcp-gate ssh-config <host> [--remote-socket PATH]`. */
export function sshConfigCommand(
  inv: Invocation,
  args: readonly string[],
  _log: Logger,
): Promise<number> {
  if (args.length !== 1) {
    throw new GateError("usage", "gcp-gate ssh-config takes one host: gcp-gate ssh-config <host>");
  }
  const remote = inv.extras["remote-socket"];
  printOut(sshConfigStanza({
    host: args[0]!,
    localSocket: inv.config.socket_path,
    remoteSocket: typeof remote === "string" ? remote : DEFAULT_REMOTE_SOCKET,
  }));
  return Promise.resolve(0);
}
