/**
 * Serving a metadata handler on 127.0.0.1, for gcp-metadata-proxy and for
 * with-prod's temporary proxy.
 *
 * Without `authorize`, `Deno.serve` listens on the TCP port directly (the fast
 * path). With `authorize`, a connection must be vetted before any of its bytes
 * reach HTTP: `Deno.serve` has no per-connection hook, and keying a verdict on
 * the remote port alone would let another process bind that port after the
 * vetted one closed and inherit the verdict. So we accept TCP connections
 * ourselves, decide once per connection, and relay the allowed ones to
 * `Deno.serve` on a Unix socket in a fresh 0700 directory only we can enter.
 * Keep-alive requests on one connection therefore share its verdict.
 */
import type { Logger } from "../log.ts";
import { errorPayload, toResponse } from "./responses.ts";

/** What `authorize` learns about a connection. */
export interface ConnectionInfo {
  /** The client's end (127.0.0.1 and its ephemeral port). */
  readonly remoteAddr: Deno.NetAddr;
  /** Our end (127.0.0.1 and the listening port). */
  readonly localAddr: Deno.NetAddr;
}

/** Decides once per connection whether it may talk to the handler. */
export type ConnectionAuthorizer = (conn: ConnectionInfo) => boolean | Promise<boolean>;

/** Options for {@linkcode startMetadataServer}. */
export interface MetadataServerOptions {
  /** 0 picks a free port. */
  port: number;
  handler: (req: Request) => Response | Promise<Response>;
  log: Logger;
  /** Default 127.0.0.1. Never a non-loopback address: tokens must not leave the machine. */
  hostname?: string;
  authorize?: ConnectionAuthorizer;
  /** Most concurrent connections in `authorize` mode (default 256). */
  maxConnections?: number;
  /**
   * Aborting it shuts the server down. Pass the same signal to the handler
   * (`MetadataDeps.signal`) so long `wait_for_change` waits end first.
   */
  signal?: AbortSignal;
}

/** A running metadata server. */
export interface MetadataServer extends AsyncDisposable {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
  /** Stops listening, waits (bounded) for in-flight requests. */
  shutdown(): Promise<void>;
}

const DRAIN_MS = 2000;

function onError(log: Logger): (err: unknown) => Response {
  return (err) => {
    log.error("metadata request failed", { error: String(err) });
    return toResponse(errorPayload(500, "Internal Server Error"), false);
  };
}

/** Starts serving `options.handler`; resolves once it listens. */
export async function startMetadataServer(options: MetadataServerOptions): Promise<MetadataServer> {
  const hostname = options.hostname ?? "127.0.0.1";
  const server = options.authorize
    ? await startVetted(options, hostname, options.authorize)
    : await startDirect(options, hostname);
  const signal = options.signal;
  if (signal) {
    if (signal.aborted) await server.shutdown();
    else signal.addEventListener("abort", () => void server.shutdown(), { once: true });
  }
  return server;
}

async function startDirect(
  options: MetadataServerOptions,
  hostname: string,
): Promise<MetadataServer> {
  const ac = new AbortController();
  let port = 0;
  const listening = Promise.withResolvers<void>();
  const server = Deno.serve({
    hostname,
    port: options.port,
    signal: ac.signal,
    onListen: (addr) => {
      port = addr.port;
      listening.resolve();
    },
    onError: onError(options.log),
  }, options.handler);
  await listening.promise;
  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      // Abort only if draining takes too long: aborting after a completed
      // shutdown throws BadResource inside Deno.
      const limit = setTimeout(() => ac.abort(), DRAIN_MS);
      await server.shutdown();
      clearTimeout(limit);
    })();
    return stopping;
  };
  return {
    port,
    finished: server.finished,
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}

/** The raw answer for a refused connection: a valid HTTP response, then close. */
function refusalBytes(): Uint8Array {
  const body = "Forbidden: this metadata server serves only the process tree it was started for\n";
  return new TextEncoder().encode(
    "HTTP/1.1 403 Forbidden\r\nMetadata-Flavor: Google\r\nServer: Metadata Server for VM\r\n" +
      `Content-Type: application/text\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * Copies `from` into `to` until EOF or an error, then closes `to`'s writing
 * side. A plain read/write loop with one reused buffer: measurably cheaper per
 * small request than stream piping.
 */
async function copy(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(16 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      let off = 0;
      while (off < n) off += await to.write(buf.subarray(off, n));
    }
  } catch { /* either side closed */ }
  try {
    await to.closeWrite();
  } catch { /* already closed */ }
}

async function startVetted(
  options: MetadataServerOptions,
  hostname: string,
  authorize: ConnectionAuthorizer,
): Promise<MetadataServer> {
  const { log } = options;
  const maxConnections = options.maxConnections ?? 256;
  // A private directory: nothing but this process may connect to the inner socket.
  const dir = await Deno.makeTempDir({ prefix: "gcp-metadata-" });
  await Deno.chmod(dir, 0o700);
  const innerPath = `${dir}/inner.sock`;
  const ac = new AbortController();
  const innerReady = Promise.withResolvers<void>();
  const inner = Deno.serve({
    path: innerPath,
    signal: ac.signal,
    onListen: () => innerReady.resolve(),
    onError: onError(log),
  }, options.handler);
  await innerReady.promise;
  await Deno.chmod(innerPath, 0o600);

  const listener = Deno.listen({ hostname, port: options.port, transport: "tcp" });
  const port = (listener.addr as Deno.NetAddr).port;
  const live = new Set<Deno.Conn>();
  const refusal = refusalBytes();

  async function relay(conn: Deno.TcpConn): Promise<void> {
    let allowed = false;
    try {
      allowed = await authorize({
        remoteAddr: conn.remoteAddr,
        localAddr: conn.localAddr,
      });
    } catch (err) {
      // Fail closed: an authorizer that cannot decide refuses.
      log.warn("connection authorization failed; refusing", { error: String(err) });
    }
    if (!allowed) {
      await conn.write(refusal).catch(() => {});
      return;
    }
    const upstream = await Deno.connect({ transport: "unix", path: innerPath });
    live.add(upstream);
    try {
      await Promise.all([copy(conn, upstream), copy(upstream, conn)]);
    } finally {
      live.delete(upstream);
      try {
        upstream.close();
      } catch { /* closed by pipeTo */ }
    }
  }

  const accepting = (async () => {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch {
        return; // listener closed
      }
      if (live.size >= maxConnections) {
        try {
          conn.close();
        } catch { /* gone */ }
        continue;
      }
      live.add(conn);
      void relay(conn).finally(() => {
        live.delete(conn);
        try {
          conn.close();
        } catch { /* closed by pipeTo */ }
      });
    }
  })();

  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      try {
        listener.close();
      } catch { /* already closed */ }
      await accepting;
      const limit = setTimeout(() => ac.abort(), DRAIN_MS);
      for (const c of live) {
        try {
          c.close();
        } catch { /* gone */ }
      }
      await inner.shutdown();
      clearTimeout(limit);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    })();
    return stopping;
  };
  return {
    port,
    finished: inner.finished,
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}
