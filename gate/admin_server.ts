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
import type { ControlSlot } from "./control.ts";

/** Options for {@linkcode startAdminServer}. */
export interface AdminServerOptions {
  socketPath: string;
  /** The gate's socket: the admin socket must not share its directory. */
  gateSocketPath: string;
  queue: ApprovalQueue;
  log: Logger;
  /** Status and reload of the running daemon. */
  control?: ControlSlot;
}

export interface AdminServer {
  shutdown(): Promise<void>;
}

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

/** The path with symlinks resolved as far as it exists (the rest kept as written). */
function realPrefix(path: string): string {
  const rest: string[] = [];
  let p = path;
  while (p !== "/" && p !== "") {
    try {
      const real = Deno.realPathSync(p);
      return [real === "/" ? "" : real, ...rest].join("/") || "/";
    } catch {
      rest.unshift(p.slice(p.lastIndexOf("/") + 1));
      p = dirname(p);
    }
  }
  return `/${rest.join("/")}`;
}

function within(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith("/") ? outer : `${outer}/`);
}

/** True when one socket's directory is, contains or lies inside the other's. */
export function sharesMountedDir(adminSocket: string, gateSocket: string): boolean {
  const a = realPrefix(dirname(adminSocket));
  const g = realPrefix(dirname(gateSocket));
  return within(a, g) || within(g, a);
}

function isAdminLive(path: string): Promise<boolean> {
  return answersHealth(createAdminClient({ socketPath: path, timeoutMs: 1000 }));
}

/** Binds the admin socket and serves the admin API. */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const { socketPath, log } = options;
  if (sharesMountedDir(socketPath, options.gateSocketPath)) {
    // The gate socket's directory is what containers mount: an admin socket
    // in it, below it, or above it (mounting a parent mounts both) would let
    // a container approve its own prod request.
    throw new GateError(
      "config",
      `admin_socket_path ${socketPath} shares a directory tree with the gate socket ${options.gateSocketPath}, which containers mount; put the admin socket in a directory outside it`,
    );
  }
  return await startGateServer({
    socketPath,
    handler: createAdminHandler({
      queue: options.queue,
      log,
      ...(options.control ? { control: options.control } : {}),
    }),
    log,
    drainMs: 2000,
    isLive: isAdminLive,
    readyMessage: `admin socket listening on ${socketPath} (approve queued prod requests here)`,
  });
}
