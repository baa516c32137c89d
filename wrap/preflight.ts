/**
 * with-prod's checks before it asks for prod access: is the gate socket one
 * we may trust, can a process running as us replace it, and is a gate there
 * at all, new enough to bind the session to with-prod's lease. Each failure
 * is one line saying why and what to fix, before any approval code is shown
 * or any human is asked.
 */
import type { Config } from "../shared/config.ts";
import { GateError, isGateError } from "../shared/errors.ts";
import { createGateClient, type GateClient } from "../shared/gate_client.ts";
import type { Logger } from "../shared/log.ts";
import { basename, dirname } from "../shared/path.ts";
import {
  checkedThrough,
  checkSocketDirWritable,
  checkSocketTrust,
  READ_ONLY_MOUNT,
  type SocketTrustDeps,
  SYSTEM_SOCKET_TRUST_DEPS,
  writableDirMessage,
} from "../shared/socket_trust.ts";
import { pinDirectory } from "./pinned_dir.ts";

/** Deadline for the gate's health answer: over ssh a sleeping laptop leaves a connect hanging. */
export const PREFLIGHT_TIMEOUT_MS = 5000;

/** Options for {@linkcode preflightGate}. */
export interface PreflightOptions {
  readonly config: Config;
  readonly gate: GateClient;
  readonly deps: SocketTrustDeps;
  readonly signal?: AbortSignal;
}

/**
 * Throws GateError `untrusted_socket` (socket or its directory not safe) or
 * `gate_unreachable` (no gate answers), at once.
 */
export async function preflightGate(options: PreflightOptions): Promise<void> {
  const { config, deps } = options;
  const path = config.socket_path;
  checkSocketTrust(path, deps);
  if (!config.allow_writable_socket_dir) {
    // Only a read-only mount (EROFS) proves that nothing in the container can
    // have put this directory here: root can plant a directory owned by
    // anyone, with any mode, in place of the mount.
    const dir = checkSocketDirWritable(path, deps);
    if (dir.writable || dir.why !== READ_ONLY_MOUNT) {
      throw new GateError("untrusted_socket", writableDirMessage(path, dir.why));
    }
  }
  let health: Awaited<ReturnType<GateClient["health"]>>;
  try {
    health = await options.gate.health({
      timeoutMs: PREFLIGHT_TIMEOUT_MS,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (err) {
    if (isGateError(err, "timeout")) {
      throw new GateError(
        "gate_unreachable",
        `the gate at ${path} did not answer within ${
          PREFLIGHT_TIMEOUT_MS / 1000
        } s — is gcp-gate running, and (over ssh) the laptop awake and the ssh session up?`,
      );
    }
    if (isGateError(err, "gate_unreachable")) {
      throw new GateError(
        "gate_unreachable",
        `${err.message} (over ssh: reconnect the ssh session that forwards the gate socket)`,
      );
    }
    throw err;
  }
  // An older gate would open a session that nothing ends when with-prod
  // does: find out before a human spends an approval on it.
  if (health.session_lease !== true) {
    throw new GateError(
      "protocol_mismatch",
      `gcp-gate on the host (${
        String(health.version).slice(0, 40)
      }) is older than this with-prod and cannot bind the prod session to it (session lease); update gcp-gate on the host`,
    );
  }
}

/**
 * A directory that could not be pinned on Linux fails closed: falling back to
 * the path would reopen the very race the pin closes (an attacker who can
 * rename the directory can also make it briefly vanish). Only a user who
 * already accepted a writable socket directory gets the path-based checks.
 */
function unpinned(config: Config, log: Logger): void {
  const dir = dirname(config.socket_path);
  if (Deno.build.os !== "linux" || config.allow_writable_socket_dir) {
    log.debug("socket directory not pinned: checked by path");
    return;
  }
  let missing = false;
  try {
    missing = !Deno.statSync(dir).isDirectory;
  } catch {
    missing = true;
  }
  throw missing
    ? new GateError(
      "gate_unreachable",
      `gate socket not found at ${config.socket_path} — is gcp-gate running on the host, and is its socket directory mounted here?`,
    )
    : new GateError(
      "untrusted_socket",
      `cannot pin ${dir} to check it (with-prod needs /proc and libc over FFI): refusing to ask for prod access through a socket it cannot check`,
    );
}

/** The gate client with-prod uses, and the socket checks it makes. */
export interface PinnedGate {
  readonly gate: GateClient;
  /** Checks through the pinned directory (or by path where it cannot be pinned). */
  readonly trust: SocketTrustDeps;
  /** Closes the client and the pinned directory. */
  close(): void;
}

/**
 * Opens the socket's directory once (wrap/pinned_dir.ts) and makes every
 * check and every gate call through it: renaming a parent directory after the
 * checks (root in a container can rename the read-only mount point's parent)
 * cannot put a relay in front of the gate.
 */
export function pinnedGateClient(config: Config, log: Logger): PinnedGate {
  const socket = config.socket_path;
  const pinned = pinDirectory(dirname(socket));
  if (!pinned) unpinned(config, log);
  const trust = pinned
    ? checkedThrough(SYSTEM_SOCKET_TRUST_DEPS, socket, pinned.path)
    : SYSTEM_SOCKET_TRUST_DEPS;
  const gate = createGateClient({
    socketPath: socket,
    ...(pinned ? { connectPath: `${pinned.path}/${basename(socket)}` } : {}),
    timeoutMs: 10_000,
    // Before every call, not just once: the socket can be replaced meanwhile.
    checkSocket: (p) => checkSocketTrust(p, trust),
  });
  return {
    gate,
    trust,
    close() {
      gate.close();
      pinned?.close();
    },
  };
}
