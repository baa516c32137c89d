/**
 * Listening on a gate socket (and the admin socket), and shutting down cleanly.
 *
 * Each socket has its own accept loop (shared/http1): at most
 * `maxConnections` connections at once (at the cap a silent one, else the
 * one nearest its deadline, is closed), an idle timeout, a header timeout,
 * and its own share of the thread per turn of the event loop; a request's
 * signal aborts as soon as its client leaves. So one container flooding its
 * socket with idle or slow connections costs that socket's slots, not
 * another profile's, and the process keeps its file descriptors.
 */
import { GateError } from "../shared/errors.ts";
import { errorResponse } from "../shared/http.ts";
import type { Logger } from "../shared/log.ts";
import { createGateClient } from "../shared/gate_client.ts";
import { CONNECTION_DEFAULTS, serveListener } from "../shared/http1/accept.ts";
import type { WireRequest } from "../shared/http1/parse.ts";
import type { ServedRequest } from "../shared/http1/serve.ts";
import { answerBytes } from "../shared/http1/wire.ts";
import { LIMITS } from "../shared/protocol.ts";
import { prepareSocketPath, removeOwnSocket } from "./socket.ts";

export interface GateServer {
  readonly finished: Promise<void>;
  /** Live connections now. */
  readonly connections: number;
  /** Applies new connection limits (a reload); connections already open keep going. */
  setLimits(limits: ConnectionLimits): void;
  /** Stops accepting, waits (bounded) for in-flight requests, removes the socket. */
  shutdown(): Promise<void>;
}

/** A socket's connection limits. */
export interface ConnectionLimits {
  /** Most concurrent connections (default 256). */
  readonly maxConnections?: number | undefined;
  /** An idle keep-alive connection is closed after this long (default 30 s). */
  readonly idleTimeoutMs?: number | undefined;
}

/**
 * What a gate route reads of a request. A `Request` has all of it (tests
 * call handlers with real Requests); the connection loop passes a lighter
 * object whose body was read whole, without building a `Request` (which
 * validates every header again and wraps the body in a stream).
 */
export interface GateRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: { get(name: string): string | null };
  readonly signal: AbortSignal;
  /** A stream (a `Request`'s) or the bytes already read (the connection loop's). */
  readonly body: ReadableStream<Uint8Array> | Uint8Array | null;
}

/** A gate handler: a pure `(GateRequest) => Response`, and optionally prebuilt answers for hot requests. */
export interface GateHandler {
  (req: GateRequest): Response | Promise<Response>;
  /** The bytes of a complete answer when the handler has one ready (a cached token); else undefined. */
  hot?: ((req: WireRequest, close: boolean) => Uint8Array | undefined) | undefined;
}

/** Options for {@linkcode startGateServer}. */
export interface GateServerOptions extends ConnectionLimits {
  socketPath: string;
  handler: GateHandler;
  log: Logger;
  /** Longest wait for in-flight requests at shutdown (ms). */
  drainMs?: number;
  /** Answers true when a live server of this kind holds `path` (default: a gate's /health). */
  isLive?: (path: string) => Promise<boolean>;
  /** Logged once listening (default: the `ready: listening on <path>` line tests wait for). */
  readyMessage?: string;
}

const ERROR_CODES: Readonly<Record<number, string>> = {
  411: "bad_request",
  413: "too_large",
  431: "too_large",
};

/** A refusal the connection loop makes itself, in the gate's `{error, code}` shape. */
function refusal(status: number, message: string): Uint8Array {
  const body = JSON.stringify({ error: message, code: ERROR_CODES[status] ?? "bad_request" });
  const headers: [string, string][] = [["content-type", "application/json"], [
    "cache-control",
    "no-store",
  ]];
  return answerBytes(status, headers, body, true);
}

/**
 * Every request on a gate socket may wait (on Google, on a human), so each
 * takes its signal up front: the loop then watches the connection and aborts
 * the request the moment its client leaves (an approval is withdrawn).
 */
function watched(handler: GateHandler): (req: ServedRequest) => Response | Promise<Response> {
  return (req) => {
    void req.signal;
    return handler(req);
  };
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
 * the gate sockets and the admin socket alike, so all get the same checks.
 */
export async function startGateServer(options: GateServerOptions): Promise<GateServer> {
  const { socketPath, log, handler } = options;
  await prepareSocketPath(socketPath, {
    uid: () => Deno.uid(),
    isLive: options.isLive ?? isGateLive,
  });
  const listener = Deno.listen({ transport: "unix", path: socketPath });
  const served = serveListener({
    listener,
    log,
    handler: watched(handler),
    hot: handler.hot,
    onError: (err) => {
      log.error("request failed", { error: String(err) });
      return errorResponse(new GateError("internal", "internal error; see the gate's log"));
    },
    refuse: refusal,
    // Deno's fetch through a Unix-socket client sends `GET http://host/path`.
    absoluteForm: true,
    maxBodyBytes: LIMITS.maxBodyBytes,
    maxConnections: options.maxConnections ?? CONNECTION_DEFAULTS.maxConnections,
    idleTimeoutMs: options.idleTimeoutMs ?? CONNECTION_DEFAULTS.idleTimeoutMs,
    headerTimeoutMs: CONNECTION_DEFAULTS.headerTimeoutMs,
    drainMs: options.drainMs ?? 5000,
  });
  // The directory is 0700, so the window before this chmod exposes nothing to
  // other users. But a container that mounts the directory can write in it:
  // chmod follows symlinks, so make sure the path is still our socket first.
  const bound = Deno.lstatSync(socketPath);
  if (!bound.isSocket) {
    await served.shutdown();
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
    finished: served.finished,
    get connections() {
      return served.connections;
    },
    setLimits: (limits) =>
      served.setLimits({
        maxConnections: limits.maxConnections ?? CONNECTION_DEFAULTS.maxConnections,
        idleTimeoutMs: limits.idleTimeoutMs ?? CONNECTION_DEFAULTS.idleTimeoutMs,
      }),
    shutdown() {
      stopping ??= (async () => {
        // Stop accepting first (the socket path goes away), then let in-flight
        // requests finish; idle keep-alive connections are closed at once.
        removeOwnSocket(socketPath, ino);
        await served.shutdown();
      })();
      return stopping;
    },
  };
}
