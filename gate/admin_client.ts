/**
 * The client `gcp-gate pending|approve|deny` use to reach the running gate's
 * admin socket.
 */
import { type ErrorCode, GateError } from "../shared/errors.ts";
import { PROTOCOL_HEADER, PROTOCOL_VERSION, SOCKET_HOST } from "../shared/protocol.ts";
import type { DecideResponse, PendingResponse } from "./admin_routes.ts";

/** Options for {@linkcode createAdminClient}. */
export interface AdminClientOptions {
  socketPath: string;
  timeoutMs?: number;
}

export interface AdminClient {
  health(): Promise<void>;
  pending(): Promise<PendingResponse>;
  decide(id: string, approve: boolean): Promise<DecideResponse>;
  close(): void;
}

/** Explains why the admin socket did not answer (the runtime's "fetch failed" says nothing). */
function unreachable(socketPath: string, err: unknown): GateError {
  let why: string;
  try {
    why = Deno.lstatSync(socketPath).isSocket
      ? `the admin socket ${socketPath} exists but no gate answers there; start gcp-gate`
      : `${socketPath} is not a socket; check admin_socket_path`;
  } catch (statErr) {
    why = statErr instanceof Deno.errors.NotFound
      ? `no gate is running with admin socket ${socketPath}; start gcp-gate with the same config (--config, GCP_GATE_*) first`
      : `cannot reach the admin socket ${socketPath}: ${(err as Error).message}`;
  }
  return new GateError("gate_unreachable", why, { cause: err });
}

/** Creates a client for the admin socket at `options.socketPath`. */
export function createAdminClient(options: AdminClientOptions): AdminClient {
  const { socketPath } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;
  let http: Deno.HttpClient | undefined;

  async function call<T>(method: string, path: string): Promise<T> {
    http ??= Deno.createHttpClient({ proxy: { transport: "unix", path: socketPath } });
    let res: Response;
    try {
      res = await fetch(`http://${SOCKET_HOST}${path}`, {
        method,
        client: http,
        signal: AbortSignal.timeout(timeoutMs),
        headers: { [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) },
      });
    } catch (err) {
      throw unreachable(socketPath, err);
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new GateError("upstream", `the admin socket answered HTTP ${res.status} without JSON`);
    }
    if (!res.ok) {
      const e = body as { error?: unknown; code?: unknown };
      throw new GateError(
        (typeof e.code === "string" ? e.code : "upstream") as ErrorCode,
        typeof e.error === "string" ? e.error : `the admin socket answered HTTP ${res.status}`,
        { status: res.status },
      );
    }
    return body as T;
  }

  return {
    health: async () => {
      await call("GET", "/health");
    },
    pending: () => call("GET", "/pending"),
    decide: (id, approve) =>
      call("POST", `/${approve ? "approve" : "deny"}?id=${encodeURIComponent(id)}`),
    close: () => {
      http?.close();
      http = undefined;
    },
  };
}
