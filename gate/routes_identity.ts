/** The identity routes: `/identity`, `/project-number`, `/universe-domain`, `/identity-token`. */
import { GateError } from "../shared/errors.ts";
import { jsonResponse } from "../shared/http.ts";
import type {
  IdentityResponse,
  IdentityTokenResponse,
  ProjectNumberResponse,
  UniverseDomainResponse,
} from "../shared/protocol.ts";
import { sanitizeMessage, stripUnsafeChars } from "../shared/redact.ts";
import { allowOnly, validateProject } from "./params.ts";
import type { RouteContext } from "./routes_context.ts";
import type { GateRequest } from "./server.ts";

const MAX_AUDIENCE = 2000;

/** `GET /identity`: the engineer's email and the dev service account. */
export async function getIdentity(_req: GateRequest, ctx: RouteContext): Promise<Response> {
  allowOnly(ctx.url.searchParams, []);
  const { deps } = ctx.gate;
  const body: IdentityResponse = {
    email: await deps.identity.email(ctx.signal()),
    service_account: deps.serviceAccount ?? null,
  };
  return jsonResponse(body);
}

/** `GET /project-number`: the number of `?project=` or of the configured project. */
export async function getProjectNumber(_req: GateRequest, ctx: RouteContext): Promise<Response> {
  const q = ctx.url.searchParams;
  allowOnly(q, ["project"]);
  const { deps } = ctx.gate;
  const raw = q.get("project");
  const project = raw === null || raw === "" ? deps.defaultProject : validateProject(raw);
  if (project === undefined) {
    throw new GateError(
      "bad_request",
      "project: required (the gate has no project_id configured); pass ?project=<id>",
    );
  }
  const body: ProjectNumberResponse = {
    project_id: project,
    project_number: await deps.identity.projectNumber(project, ctx.signal()),
  };
  return jsonResponse(body);
}

/** `GET /universe-domain`. */
export function getUniverseDomain(_req: GateRequest, ctx: RouteContext): Response {
  allowOnly(ctx.url.searchParams, []);
  const body: UniverseDomainResponse = { universe_domain: ctx.gate.deps.universeDomain };
  return jsonResponse(body);
}

/** `GET /identity-token`: a validated audience, format and licenses flag. */
export async function getIdentityToken(_req: GateRequest, ctx: RouteContext): Promise<Response> {
  const q = ctx.url.searchParams;
  allowOnly(q, ["audience", "format", "licenses"]);
  const audience = q.get("audience") ?? "";
  if (
    audience === "" || audience.length > MAX_AUDIENCE || stripUnsafeChars(audience) !== audience
  ) {
    throw new GateError(
      "bad_request",
      `audience: required, 1 to ${MAX_AUDIENCE} printable characters`,
    );
  }
  const format = q.get("format") ?? "standard";
  if (format !== "standard" && format !== "full") {
    throw new GateError("bad_request", "format must be standard or full");
  }
  const licenses = q.get("licenses");
  if (licenses !== null && !/^(true|false)$/i.test(licenses)) {
    throw new GateError("bad_request", "licenses must be TRUE or FALSE");
  }
  const { deps } = ctx.gate;
  const t = await deps.identity.idToken(audience, format === "full", ctx.signal());
  if (t.cached) deps.audit.countHit("/identity-token", "dev");
  else {
    deps.audit.record({
      endpoint: "/identity-token",
      level: "dev",
      result: "granted",
      audience: sanitizeMessage(audience, 200),
    });
  }
  const body: IdentityTokenResponse = { id_token: t.token };
  return jsonResponse(body);
}
