/** The prod session routes: open (leased), describe, report a refusal, revoke. */
import { GateError } from "../shared/errors.ts";
import { jsonResponse } from "../shared/http.ts";
import { LEASE_HEADER } from "../shared/protocol.ts";
import { leasedSession } from "./lease.ts";
import { allowOnly, readJsonBody } from "./params.ts";
import { parseProdRequest, parseRefusalReport } from "./prod_request.ts";
import type { RouteContext } from "./routes_context.ts";
import { validateSessionId } from "./sessions.ts";
import type { GateRequest } from "./server.ts";

/** `GET /session?id=`: what the session is and how long it has left. */
export function getSession(_req: GateRequest, ctx: RouteContext): Response {
  const q = ctx.url.searchParams;
  allowOnly(q, ["id"]);
  return jsonResponse(ctx.gate.deps.prod.describeSession(validateSessionId(q.get("id"))));
}

/** `POST /session`: asks for approval and answers on a lease stream. */
export async function postSession(req: GateRequest, ctx: RouteContext): Promise<Response> {
  allowOnly(ctx.url.searchParams, []);
  // No lease, no approval: a session without one could outlive its
  // with-prod (a relay that swallows DELETE keeps it for hours).
  if (req.headers.get(LEASE_HEADER) !== "1") {
    throw new GateError(
      "protocol_mismatch",
      `POST /session needs a session lease (header ${LEASE_HEADER}: 1, as with-prod sends): this gate no longer opens sessions that could outlive their client; install matching gcp-gate versions on host and container`,
    );
  }
  const { deps } = ctx.gate;
  const parsed = parseProdRequest(await readJsonBody(req), {
    maxTtlSeconds: deps.sessionTtlSeconds,
    defaultProject: deps.defaultProject,
  });
  return leasedSession(parsed, { prod: deps.prod, log: deps.log, signal: deps.signal });
}

/** `POST /session/refusal?id=`: with-prod reports a request its proxy refused. */
export async function postRefusal(req: GateRequest, ctx: RouteContext): Promise<Response> {
  const q = ctx.url.searchParams;
  allowOnly(q, ["id"]);
  const id = validateSessionId(q.get("id"));
  ctx.gate.deps.prod.recordRefusal(id, parseRefusalReport(await readJsonBody(req, 2048)));
  return jsonResponse({ status: "recorded" });
}

/** `DELETE /session?id=`: ends the session now. */
export function deleteSession(_req: GateRequest, ctx: RouteContext): Response {
  const q = ctx.url.searchParams;
  allowOnly(q, ["id"]);
  ctx.gate.deps.prod.revokeSession(validateSessionId(q.get("id")), "DELETE /session");
  return jsonResponse({ status: "revoked" });
}
