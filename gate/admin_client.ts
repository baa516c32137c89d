/**
 * The client `gcp-gate pending|approve|deny` use to reach the running gate's
 * admin socket.
 */
import { GateError } from "../shared/errors.ts";
import { createSocketCaller } from "../shared/gate_client.ts";
import type { DecideResponse, PendingResponse } from "./admin_routes.ts";
import type { GateStatus, ReloadResult } from "./control.ts";

/** Options for {@linkcode createAdminClient}. */
export interface AdminClientOptions {
  socketPath: string;
  timeoutMs?: number;
}

export interface AdminClient {
  health(): Promise<void>;
  pending(): Promise<PendingResponse>;
  decide(id: string, approve: boolean): Promise<DecideResponse>;
  status(): Promise<GateStatus>;
  reload(): Promise<ReloadResult>;
  close(): void;
}

/** Explains why the admin socket did not answer (the runtime's connect error says nothing). */
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
  const call = createSocketCaller({
    socketPath: options.socketPath,
    unreachable,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
  return {
    health: async () => {
      await call("GET", "/health");
    },
    pending: () => call("GET", "/pending"),
    decide: (id, approve) =>
      call("POST", `/${approve ? "approve" : "deny"}?id=${encodeURIComponent(id)}`),
    status: () => call("GET", "/status"),
    reload: () => call("POST", "/reload"),
    close: () => {},
  };
}
