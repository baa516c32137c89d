/**
 * Listening on the admin socket. Same safety rules as the gate socket (a
 * private 0700 directory we own, a 0600 socket, no symlinks, no replacing a
 * live server), but its own directory: containers get the gate socket's
 * directory mounted, and must never see this one.
 */
import { GateError } from "../shared/errors.ts";
import type { Logger } from "../shared/log.ts";
import { answersHealth, startGateServer } from "./server.ts";
import type { ApprovalQueue } from "./approval/queue.ts";
import { createAdminHandler } from "./admin_routes.ts";
import { createAdminClient } from "./admin_client.ts";

/** Options for {@linkcode startAdminServer}. */
export interface AdminServerOptions {
  socketPath: string;
  /** The gate's socket: the admin socket must not share its directory. */
  gateSocketPath: string;
  queue: ApprovalQueue;
  log: Logger;
}

export interface AdminServer {
  shutdown(): Promise<void>;
}

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

function isAdminLive(path: string): Promise<boolean> {
  return answersHealth(createAdminClient({ socketPath: path, timeoutMs: 1000 }));
}

/** Binds the admin socket and serves the admin API. */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const { socketPath, log } = options;
  if (dirname(socketPath) === dirname(options.gateSocketPath)) {
    // The gate socket's directory is what containers mount: an admin socket
    // there would let a container approve its own prod request.
    throw new GateError(
      "config",
      `admin_socket_path ${socketPath} is in the gate socket's directory, which containers mount; choose another directory`,
    );
  }
  return await startGateServer({
    socketPath,
    handler: createAdminHandler({ queue: options.queue, log }),
    log,
    drainMs: 2000,
    isLive: isAdminLive,
    readyMessage: `admin socket listening on ${socketPath} (approve queued prod requests here)`,
  });
}
