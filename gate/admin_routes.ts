/**
 * The admin API, served only on the admin socket (its own 0600 socket in its
 * own 0700 directory, never mounted into containers): list waiting prod
 * requests and decide them. The gate socket has none of these endpoints, and
 * this socket has none of the token endpoints, so a container that can reach
 * the gate still cannot approve its own request.
 */
import { GateError } from "../shared/errors.ts";
import { errorResponse, jsonResponse } from "../shared/http.ts";
import type { Logger } from "../shared/log.ts";
import { LIMITS, PROTOCOL_HEADER, PROTOCOL_VERSION } from "../shared/protocol.ts";
import type { ApprovalQueue } from "./approval/queue.ts";
import type { ControlSlot, GateStatus } from "./control.ts";
import type { GateRequest } from "./server.ts";

/** One waiting request as `GET /pending` lists it. */
export interface PendingView {
  id: string;
  kind: "session" | "token";
  email: string;
  project: string | null;
  scopes: string[];
  ttl_seconds: number;
  reason: string | null;
  command: string[] | null;
  notes: string[];
  /** with-prod's confirmation code; null when the request did not come from with-prod. */
  code: string | null;
  /** The caller's stated host ("build-vm-3 via ssh", advisory); null when not stated. */
  from?: string | null;
  /** The account an approval grants (`prod_service_account`); null: the engineer's own credentials. */
  service_account: string | null;
  /** What the approval grants when it is a PAM grant (entitlement, roles, duration). */
  grants?: string | null;
  /** The profile whose socket the request arrived on; null for a gate without profiles. */
  profile: string | null;
  age_seconds: number;
  expires_in: number;
}

export interface PendingResponse {
  pending: PendingView[];
}

export interface DecideResponse {
  id: string;
  approved: boolean;
}

/** Dependencies of {@linkcode createAdminHandler}. */
export interface AdminHandlerDeps {
  queue: ApprovalQueue;
  log: Logger;
  /** The running daemon's status and reload (absent: those endpoints answer 503). */
  control?: ControlSlot;
  now?: () => number;
}

const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** What the admin routes share: the deps and the clock. */
interface AdminContext {
  readonly deps: AdminHandlerDeps;
  readonly now: () => number;
}

function pending(ctx: AdminContext): PendingResponse {
  const t = ctx.now();
  return {
    pending: ctx.deps.queue.list().map(({ request: r, createdAt, expiresAt }) => ({
      id: r.id,
      kind: r.kind,
      email: r.email,
      project: r.project ?? null,
      scopes: [...r.scopes],
      ttl_seconds: r.ttlSeconds,
      reason: r.reason ?? null,
      command: r.command ? [...r.command] : null,
      notes: [...r.notes],
      code: r.code ?? null,
      from: r.from ?? null,
      service_account: r.serviceAccount ?? null,
      grants: r.grants ?? null,
      profile: r.profile ?? null,
      age_seconds: Math.floor((t - createdAt) / 1000),
      expires_in: Math.max(0, Math.ceil((expiresAt - t) / 1000)),
    })),
  };
}

function control(ctx: AdminContext): NonNullable<ControlSlot["current"]> {
  const c = ctx.deps.control?.current;
  if (!c) throw new GateError("internal", "the gate is not serving yet", { status: 503 });
  return c;
}

function status(ctx: AdminContext): GateStatus {
  const t = ctx.now();
  const s = control(ctx).status();
  const waiting = ctx.deps.queue.list();
  return {
    ...s,
    profiles: s.profiles.map((p) => ({
      ...p,
      // The implicit profile's requests carry no profile name.
      pending: waiting.filter((w) => (w.request.profile ?? "default") === p.name).map((w) => ({
        id: w.request.id,
        expires_in: Math.max(0, Math.ceil((w.expiresAt - t) / 1000)),
      })),
    })),
  };
}

/** `POST /approve?id=` and `POST /deny?id=`: decides a waiting request. */
function decide(ctx: AdminContext, url: URL): DecideResponse {
  const id = url.searchParams.get("id") ?? "";
  if (!ID_RE.test(id)) {
    throw new GateError("bad_request", "id must be a request id as listed by gcp-gate pending");
  }
  const approve = url.pathname === "/approve";
  if (!ctx.deps.queue.decide(id, approve)) {
    throw new GateError(
      "not_found",
      `no prod request ${id} is waiting (it may have expired or been withdrawn); run gcp-gate pending`,
    );
  }
  ctx.deps.log.info(`prod request ${id} ${approve ? "approved" : "denied"} on the admin socket`);
  return { id, approved: approve };
}

async function route(ctx: AdminContext, req: GateRequest, url: URL): Promise<Response> {
  const path = url.pathname;
  const only = (m: string): void => {
    if (req.method !== m) throw new GateError("method_not_allowed", `${path} accepts ${m} only`);
  };
  if (path === "/health") {
    only("GET");
    return jsonResponse({ status: "ok", admin: true });
  }
  if (req.headers.get(PROTOCOL_HEADER) !== String(PROTOCOL_VERSION)) {
    throw new GateError(
      "protocol_mismatch",
      `this admin socket speaks protocol ${PROTOCOL_VERSION}; use the gcp-gate of the same version`,
    );
  }
  if (path === "/pending") {
    only("GET");
    return jsonResponse(pending(ctx));
  }
  if (path === "/status") {
    only("GET");
    return jsonResponse(status(ctx));
  }
  if (path === "/reload") {
    only("POST");
    return jsonResponse(await control(ctx).reload());
  }
  if (path === "/approve" || path === "/deny") {
    only("POST");
    return jsonResponse(decide(ctx, url));
  }
  throw new GateError("not_found", `no such admin endpoint: ${path.slice(0, 100)}`);
}

/** Creates the admin socket's request handler. */
export function createAdminHandler(
  deps: AdminHandlerDeps,
): (req: GateRequest) => Promise<Response> {
  const ctx: AdminContext = { deps, now: deps.now ?? Date.now };
  return async (req) => {
    try {
      if (req.url.length > LIMITS.maxUrlBytes) {
        throw new GateError("too_large", `request URL longer than ${LIMITS.maxUrlBytes} bytes`, {
          status: 414,
        });
      }
      return await route(ctx, req, new URL(req.url));
    } catch (err) {
      if (!(err instanceof GateError)) {
        deps.log.error("admin: unexpected error", { error: String(err) });
      }
      return errorResponse(err);
    }
  };
}
