/**
 * with-prod's temporary metadata proxy: the same handler and server code as
 * gcp-metadata-proxy, serving the prod session's tokens, with every TCP
 * connection vetted once: only the wrapped command's process tree may use it.
 */
import { GateError } from "../shared/errors.ts";
import type { GateClient } from "../shared/gate_client.ts";
import type { Logger } from "../shared/log.ts";
import {
  createMetadataHandler,
  type MetadataGate,
  type MetadataHandler,
} from "../shared/metadata/handler.ts";
import { errorPayload, toResponse } from "../shared/metadata/responses.ts";
import { type ConnectionInfo, startMetadataServer } from "../shared/metadata/server.ts";
import { createTokenCache, type TokenCache } from "../shared/metadata/token_cache.ts";
import {
  createOwnerCheck,
  type OwnerCheck,
  type OwnerVerdict,
  type ProcDeps,
  REAL_PROC,
} from "./pid_owner.ts";
import { createRefusalReporter } from "./refusals.ts";
import {
  type ConnectionKey,
  createSocketFinder,
  findInTable,
  type SocketFinderHandle,
} from "./tcp_table.ts";

/** Options for {@linkcode startTempProxy}. */
export interface TempProxyOptions {
  readonly gate: GateClient;
  /**
   * The approved session, once there is one. The proxy may start while the
   * human decides (it serves nobody until {@linkcode TempProxy.allowTree}).
   */
  readonly session: () => ActiveSession | undefined;
  readonly project: string | undefined;
  readonly zone: string;
  readonly log: Logger;
  /** /proc access (tests may substitute). */
  readonly proc?: ProcDeps;
  /** Connection limits (`max_connections`, `idle_timeout_seconds`). */
  readonly maxConnections?: number;
  readonly idleTimeoutMs?: number;
}

/** A connection before the command runs: nobody is allowed yet. */
function beforeStart(sock: { inode: string; uid: number } | undefined): OwnerVerdict {
  const gone = !sock || sock.inode === "0";
  return {
    allowed: false,
    kind: gone ? "gone" : "not_started",
    uid: sock?.uid,
    pid: undefined,
    comm: undefined,
    inode: undefined,
    reason: gone
      ? "the connection closed before it could be checked"
      : "the command has not started",
  };
}

/** What the proxy needs of the approved session. */
export interface ActiveSession {
  readonly id: string;
  /** The engineer who asked. */
  readonly email: string;
  /** The account the session's tokens belong to. */
  readonly service_account: string;
}

function requireSession(get: () => ActiveSession | undefined): ActiveSession {
  const s = get();
  if (!s) throw new GateError("internal", "no prod session is open yet");
  return s;
}

const IDENTITY_PATH = /^\/computeMetadata\/v1\/instance\/service-accounts\/[^/]+\/identity\/?$/;

/**
 * Answers ID-token requests 404, GCE's "this instance has no such account".
 * gcloud fetches an ID token next to every access token and treats 404 as
 * "none available" but any other failure as fatal; the prod proxy has no ID
 * token to give (the handler would answer 503), so it says 404 up front.
 * Requests without the flavor header go on to the handler, which refuses them.
 */
function withoutIdentityTokens(handler: MetadataHandler): MetadataHandler {
  return (req) => {
    // Most requests are for tokens: test the cheap substring first.
    if (req.url.includes("/identity") && req.headers.get("metadata-flavor") === "Google") {
      let path = "";
      try {
        path = new URL(req.url).pathname;
      } catch {
        // Not parseable: the handler answers it.
      }
      if (IDENTITY_PATH.test(path)) {
        return toResponse(
          errorPayload(
            404,
            "Not Found: with-prod serves access tokens only; ID tokens come from gcp-metadata-proxy",
          ),
          req.method === "HEAD",
        );
      }
    }
    return handler(req);
  };
}

/** A running temporary proxy. */
export interface TempProxy extends AsyncDisposable {
  /** `127.0.0.1:<port>`. */
  readonly hostPort: string;
  /** The session's tokens (refreshed through the gate's session on expiry). */
  readonly tokens: TokenCache;
  /** From now on, connections from `pid` and its descendants are served. */
  allowTree(pid: number): void;
  shutdown(): Promise<void>;
}

/** The 4-tuple the owner lookup needs, from the server's view of a connection. */
function connectionKey(conn: ConnectionInfo): ConnectionKey {
  return {
    client: { address: conn.remoteAddr.hostname, port: conn.remoteAddr.port },
    server: { address: conn.localAddr.hostname, port: conn.localAddr.port },
  };
}

/**
 * What the prod proxy asks the gate besides tokens: identity is the session's;
 * ID tokens would be the dev account's, so the prod proxy refuses them rather
 * than hand out a token for the wrong identity.
 */
function sessionMetadataGate(
  gate: TempProxyOptions["gate"],
  session: TempProxyOptions["session"],
): MetadataGate {
  return {
    identity: () => {
      const s = requireSession(session);
      return Promise.resolve({ email: s.email, service_account: s.service_account });
    },
    projectNumber: (project, opts) => gate.projectNumber(project, opts),
    universeDomain: (opts) => gate.universeDomain(opts),
    identityToken: () =>
      Promise.reject(
        new GateError(
          "not_found",
          "with-prod serves access tokens only; ID tokens come from gcp-metadata-proxy",
        ),
      ),
  };
}

/** Starts the proxy on 127.0.0.1:0; it serves nobody until {@linkcode TempProxy.allowTree}. */
export async function startTempProxy(options: TempProxyOptions): Promise<TempProxy> {
  const { gate, session, log } = options;
  const tokens = createTokenCache({
    fetch: (scopes) => gate.token({ scopes, session: requireSession(session).id }),
  });
  const sessionGate = sessionMetadataGate(gate, session);
  const ac = new AbortController();
  const handler = createMetadataHandler({
    tokens,
    gate: sessionGate,
    projectId: options.project,
    serviceAccount: undefined,
    zone: options.zone,
    instanceName: "with-prod",
    log,
    signal: ac.signal,
  });
  let check: OwnerCheck | undefined;
  const proc = options.proc ?? REAL_PROC;
  // The finder's self-test (sock_diag) costs ~15 ms of first-use setup: run
  // it while the human decides, and wait for it only if a connection comes first.
  let finder: SocketFinderHandle | undefined;
  const finderReady = createSocketFinder().then((f) => {
    finder = f;
    log.debug("connection owner lookup", { via: f.kind });
    return f;
  });
  const uid = Deno.uid() ?? -1;
  const reporter = createRefusalReporter({
    log,
    name: (inode) => check?.name(inode),
    send: (report) => {
      // In the host's audit log too: the gate records it against the session
      // (bounded per session there as well).
      const open = session();
      if (!open) return;
      gate.reportRefusal(open.id, report, { timeoutMs: 2000 }).catch((err) =>
        log.debug("could not report the refusal to the gate", { error: String(err) })
      );
    },
  });
  const decide = (f: SocketFinderHandle, conn: ConnectionInfo): boolean => {
    const key = connectionKey(conn);
    const verdict = check ? check.decide(key) : beforeStart(f.find(key));
    if (!verdict.allowed) reporter.refused(verdict, key.client.port);
    return verdict.allowed;
  };
  const authorize = (conn: ConnectionInfo): boolean | Promise<boolean> =>
    finder ? decide(finder, conn) : finderReady.then((f) => decide(f, conn));
  const server = await startMetadataServer({
    port: 0,
    handler: withoutIdentityTokens(handler),
    log,
    authorize,
    maxConnections: options.maxConnections,
    idleTimeoutMs: options.idleTimeoutMs,
    signal: ac.signal,
  });
  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      ac.abort();
      await server.shutdown();
      (await finderReady).close();
      tokens.clear();
    })();
    return stopping;
  };
  return {
    hostPort: `127.0.0.1:${server.port}`,
    tokens,
    allowTree(pid) {
      // Connections are decided only once the finder is ready (see authorize).
      const findSocket = (k: ConnectionKey) => (finder ? finder.find(k) : findInTable(k));
      check = createOwnerCheck({ rootPid: pid, uid, findSocket }, proc);
    },
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}
