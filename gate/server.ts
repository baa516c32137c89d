/** Listening on the gate socket, and shutting down cleanly. */
import { GateError } from "../shared/errors.ts";
import { errorResponse } from "../shared/http.ts";
import type { Logger } from "../shared/log.ts";
import { createGateClient } from "../shared/gate_client.ts";
import { prepareSocketPath, removeOwnSocket } from "./socket.ts";

export interface GateServer {
  readonly finished: Promise<void>;
  /** Stops accepting, waits (bounded) for in-flight requests, removes the socket. */
  shutdown(): Promise<void>;
}

/** Options for {@linkcode startGateServer}. */
export interface GateServerOptions {
  socketPath: string;
  handler: (req: Request) => Response | Promise<Response>;
  log: Logger;
  /** Longest wait for in-flight requests at shutdown (ms). */
  drainMs?: number;
  /** Answers true when a live server of this kind holds `path` (default: a gate's /health). */
  isLive?: (path: string) => Promise<boolean>;
  /** Logged once listening (default: the `ready: listening on <path>` line tests wait for). */
  readyMessage?: string;
}

/** True when `client` answers /health (the client is closed afterwards). */
export async function answersHealth(
  client: { health(): Promise<unknown>; close(): void },
): Promise<boolean> {
  try {
    await client.health();
    return true;
  } catch {
    return false;
  } finally {
    client.close();
  }
}

/** Asks /health of a gate on `path` with a short deadline. */
export function isGateLive(path: string): Promise<boolean> {
  return answersHealth(createGateClient({ socketPath: path, timeoutMs: 1000 }));
}

/**
 * Binds a Unix socket (0600 inside a 0700 dir) and serves `handler`. Used for
 * the gate socket and the admin socket alike, so both get the same checks.
 */
export async function startGateServer(options: GateServerOptions): Promise<GateServer> {
  const { socketPath, log } = options;
  await prepareSocketPath(socketPath, {
    uid: () => Deno.uid(),
    isLive: options.isLive ?? isGateLive,
  });
  const ac = new AbortController();
  let inflight = 0;
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  const server = Deno.serve({
    path: socketPath,
    signal: ac.signal,
    onListen: () => resolveReady(),
    onError: (err) => {
      log.error("request failed", { error: String(err) });
      return errorResponse(new GateError("internal", "internal error; see the gate's log"));
    },
  }, (req) => {
    const res = options.handler(req);
    // Only answers still being worked on are in flight; synchronous ones are already done.
    if (!(res instanceof Promise)) return res;
    inflight++;
    return res.finally(() => inflight--);
  });
  await ready;
  // The directory is 0700, so the window before this chmod exposes nothing to
  // other users. But a container that mounts the directory can write in it:
  // chmod follows symlinks, so make sure the path is still our socket first.
  const bound = Deno.lstatSync(socketPath);
  if (!bound.isSocket) {
    throw new GateError(
      "unsafe_path",
      `${socketPath} was replaced while binding; refusing to continue`,
    );
  }
  Deno.chmodSync(socketPath, 0o600);
  const ino = bound.ino;
  log.info(options.readyMessage ?? `ready: listening on ${socketPath}`);

  let stopping: Promise<void> | undefined;
  return {
    finished: server.finished,
    shutdown() {
      stopping ??= (async () => {
        // Stop accepting first (the socket path goes away), then let in-flight requests finish.
        removeOwnSocket(socketPath, ino);
        const deadline = Date.now() + (options.drainMs ?? 5000);
        while (inflight > 0 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 20));
        }
        // Deno's graceful shutdown also waits for idle keep-alive connections,
        // which clients may hold open indefinitely: close them now instead.
        ac.abort();
        await server.finished;
      })();
      return stopping;
    },
  };
}
