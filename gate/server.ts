/** Listening on the gate socket, and shutting down cleanly. */
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
  handler: (req: Request) => Promise<Response>;
  log: Logger;
  /** Longest wait for in-flight requests at shutdown (ms). */
  drainMs?: number;
}

/** Asks /health on `path` with a short deadline. */
export async function isGateLive(path: string): Promise<boolean> {
  const client = createGateClient({ socketPath: path, timeoutMs: 1000 });
  try {
    await client.health();
    return true;
  } catch {
    return false;
  } finally {
    client.close();
  }
}

/** Binds the socket (0600 inside a 0700 dir) and serves `handler`. */
export async function startGateServer(options: GateServerOptions): Promise<GateServer> {
  const { socketPath, log } = options;
  await prepareSocketPath(socketPath, { uid: () => Deno.uid(), isLive: isGateLive });
  const ac = new AbortController();
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  const server = Deno.serve({
    path: socketPath,
    signal: ac.signal,
    onListen: () => resolveReady(),
    onError: (err) => {
      log.error("request failed", { error: String(err) });
      return new Response(JSON.stringify({ error: "internal error", code: "internal" }), {
        status: 500,
      });
    },
  }, options.handler);
  await ready;
  // The directory is 0700, so the window before this chmod exposes nothing.
  Deno.chmodSync(socketPath, 0o600);
  const ino = Deno.lstatSync(socketPath).ino;
  log.info(`ready: listening on ${socketPath}`);

  let stopping: Promise<void> | undefined;
  return {
    finished: server.finished,
    shutdown() {
      stopping ??= (async () => {
        const drain = server.shutdown();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const limit = new Promise<void>((r) => (timer = setTimeout(r, options.drainMs ?? 5000)));
        await Promise.race([drain, limit]);
        clearTimeout(timer);
        ac.abort();
        removeOwnSocket(socketPath, ino);
      })();
      return stopping;
    },
  };
}
