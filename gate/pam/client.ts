/**
 * Privileged Access Manager (v1) REST calls: entitlement lookup, grant
 * create/get/search/withdraw and the long-running operation a withdrawal
 * returns. Plain fetch with a deadline per attempt and retries within an
 * overall deadline, like gate/google_api.ts; `grants.create` carries a
 * `requestId`, so a retry after a 5xx or a lost answer never makes a second
 * grant. Every call made for a prod session carries `X-Goog-Request-Reason`,
 * which Cloud Audit Logs record next to the call.
 */
import { GateError } from "../../shared/errors.ts";
import { sanitizeMessage } from "../../shared/redact.ts";
import { fetchFailure, type FetchFn, googleErrorMessage } from "../google_api.ts";
import { withRetry } from "../retry.ts";

/** Every grant state PAM v1 documents. */
export type GrantState =
  | "APPROVAL_AWAITED"
  | "DENIED"
  | "SCHEDULED"
  | "ACTIVATING"
  | "ACTIVE"
  | "ACTIVATION_FAILED"
  | "EXPIRED"
  | "REVOKING"
  | "REVOKED"
  | "ENDED"
  | "WITHDRAWING"
  | "WITHDRAWN";

/** The fields of a grant the gate uses. */
export interface Grant {
  readonly name: string;
  readonly state: GrantState | string;
  readonly requestedDuration: string | undefined;
  /** `justification.unstructuredJustification`: ours start with {@linkcode JUSTIFICATION_PREFIX}. */
  readonly justification: string | undefined;
  /** When the grant became active (from its timeline), ms since epoch. */
  readonly activatedAt: number | undefined;
}

/** The fields of an entitlement the dialog shows. */
export interface Entitlement {
  readonly name: string;
  readonly roles: readonly string[];
  /** `maxRequestDuration` in seconds, when Google says. */
  readonly maxSeconds: number | undefined;
}

/** Pages of `grants:search` read at most (100 grants each). */
export const MAX_SEARCH_PAGES = 10;

/** States in which a grant gives access or may still do so. */
const OPEN_STATES: ReadonlySet<string> = new Set([
  "ACTIVE",
  "APPROVAL_AWAITED",
  "SCHEDULED",
  "ACTIVATING",
]);

/** Marks grants this gate created (so it withdraws those, not a grant made in the console). */
export const JUSTIFICATION_PREFIX = "gcp-gate";

/** Per call: the reason Cloud Audit Logs record, and the caller's cancellation. */
export interface PamCallOptions {
  readonly requestReason?: string | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** The PAM calls; `source` is the engineer's ADC access token (sent, never logged). */
export interface PamClient {
  getEntitlement(source: string, name: string, o?: PamCallOptions): Promise<Entitlement>;
  createGrant(
    source: string,
    entitlement: string,
    grant: { requestId: string; durationSeconds: number; justification: string },
    o?: PamCallOptions,
  ): Promise<Grant>;
  getGrant(source: string, name: string, o?: PamCallOptions): Promise<Grant>;
  /** Open grants of `entitlement` the caller created (`callerRelationship=HAD_CREATED`). */
  searchOwnGrants(source: string, entitlement: string, o?: PamCallOptions): Promise<Grant[]>;
  /** Starts a withdrawal; resolves with the operation's name (undefined when already done). */
  withdrawGrant(source: string, name: string, o?: PamCallOptions): Promise<string | undefined>;
  /** True when the operation is done; throws its error when it failed. */
  operationDone(source: string, name: string, o?: PamCallOptions): Promise<boolean>;
}

/** Options for {@linkcode createPamClient}. */
export interface PamClientOptions {
  /** Base URL (`[endpoints] privilegedaccessmanager`), without trailing slash. */
  endpoint: string;
  fetch?: FetchFn;
  timeoutMs?: number;
  deadlineMs?: number;
  baseDelayMs?: number;
}

const NAME_RE =
  /^(projects|folders|organizations)\/[A-Za-z0-9_.:-]{1,100}\/locations\/[a-z0-9-]{1,63}\/entitlements\/[a-z0-9-]{1,63}$/;
const SHORT_RE = /^[a-z0-9-]{1,63}$/;

/**
 * The full entitlement name from `pam_entitlement`: a full name as is, or a
 * short id under `projects/<project_id>/locations/<location>`.
 */
export function resolveEntitlement(
  raw: string,
  project: string | undefined,
  location: string,
): string {
  if (NAME_RE.test(raw)) return raw;
  if (SHORT_RE.test(raw)) {
    if (project === undefined) {
      throw new GateError(
        "config",
        `pam_entitlement "${raw}" is a short id: set project_id too, or give the full name projects/<id>/locations/${location}/entitlements/${raw}`,
      );
    }
    const full = `projects/${project}/locations/${location}/entitlements/${raw}`;
    if (NAME_RE.test(full)) return full;
  }
  throw new GateError(
    "config",
    `pam_entitlement must be projects|folders|organizations/<id>/locations/<location>/entitlements/<id> or a short entitlement id, got ${
      JSON.stringify(sanitizeMessage(raw, 120))
    }`,
  );
}

/** A grant name Google answered is trusted only when it sits under our entitlement. */
function isGrantOf(name: unknown, entitlement: string): name is string {
  return typeof name === "string" && name.startsWith(`${entitlement}/grants/`) &&
    /^[A-Za-z0-9_-]{1,100}$/.test(name.slice(entitlement.length + 8));
}

/** Parses `"3600s"` / `"3600.5s"`; undefined otherwise. */
export function parseDuration(raw: unknown): number | undefined {
  const m = typeof raw === "string" ? /^(\d{1,9})(\.\d+)?s$/.exec(raw) : null;
  return m ? Number(m[1]) : undefined;
}

function toGrant(j: Record<string, unknown>, entitlement: string): Grant {
  if (!isGrantOf(j.name, entitlement)) {
    throw new GateError("upstream", "Privileged Access Manager answered with an unexpected grant");
  }
  const timeline = j.timeline as { events?: unknown } | undefined;
  let activatedAt: number | undefined;
  if (Array.isArray(timeline?.events)) {
    for (const e of timeline.events.slice(0, 50) as Record<string, unknown>[]) {
      const t = typeof e?.eventTime === "string" ? Date.parse(e.eventTime) : NaN;
      if (e && typeof e === "object" && "activated" in e && Number.isFinite(t)) activatedAt = t;
    }
  }
  const just = (j.justification as { unstructuredJustification?: unknown } | undefined)
    ?.unstructuredJustification;
  return {
    name: j.name,
    state: typeof j.state === "string" ? j.state.slice(0, 40) : "STATE_UNSPECIFIED",
    requestedDuration: typeof j.requestedDuration === "string"
      ? j.requestedDuration.slice(0, 20)
      : undefined,
    justification: typeof just === "string" ? just : undefined,
    activatedAt,
  };
}

/** The entitlement a grant name belongs to. */
export function entitlementOf(grant: string): string {
  return grant.slice(0, grant.lastIndexOf("/grants/"));
}

/** What every PAM call shares. */
interface PamContext {
  readonly options: PamClientOptions;
  readonly doFetch: FetchFn;
  readonly timeoutMs: number;
  readonly deadlineMs: number;
  /** `<endpoint>/v1`. */
  readonly base: string;
}

/** One attempt: the body text of a 2xx answer, or a GateError saying what failed. */
async function once(
  ctx: PamContext,
  request: { what: string; url: string; init: RequestInit },
  ms: number,
): Promise<string> {
  const { what, url, init } = request;
  const limit = Math.min(ctx.timeoutMs, ms);
  let res: Response;
  try {
    res = await ctx.doFetch(url, { ...init, signal: AbortSignal.timeout(limit) });
  } catch (err) {
    throw fetchFailure(err, { what, url, limitMs: limit, service: "Privileged Access Manager" });
  }
  const text = await res.text().catch(() => "");
  if (!res.ok) {
    throw new GateError("upstream", `${what}: ${googleErrorMessage(res.status, text)}`, {
      status: pamStatus(res.status, text),
    });
  }
  return text;
}

/** A JSON call with retries within the deadline; the answer must be a JSON object. */
async function call(
  ctx: PamContext,
  what: string,
  req: { url: string; method: string; source: string; body?: string },
  o: PamCallOptions = {},
): Promise<Record<string, unknown>> {
  const headers: Record<string, string> = { authorization: `Bearer ${req.source}` };
  if (req.body !== undefined) headers["content-type"] = "application/json";
  if (o.requestReason) headers["x-goog-request-reason"] = o.requestReason;
  const init: RequestInit = { method: req.method, headers };
  if (req.body !== undefined) init.body = req.body;
  const text = await withRetry((remaining) => {
    o.signal?.throwIfAborted();
    return once(ctx, { what, url: req.url, init }, remaining);
  }, {
    deadlineMs: ctx.deadlineMs,
    ...(ctx.options.baseDelayMs === undefined ? {} : { baseDelayMs: ctx.options.baseDelayMs }),
  });
  try {
    const j = JSON.parse(text || "{}");
    if (j && typeof j === "object" && !Array.isArray(j)) return j;
  } catch { /* below */ }
  throw new GateError("upstream", `${what}: Google answered with a body that is not JSON`);
}

/**
 * The caller's grants of `entitlement` that may still give access. Old grants
 * (ended, withdrawn) pile up: follow the pages, boundedly, keeping only those.
 */
async function searchOwnGrants(
  ctx: PamContext,
  source: string,
  opts: { entitlement: string; call?: PamCallOptions | undefined },
): Promise<Grant[]> {
  const { entitlement } = opts;
  const out: Grant[] = [];
  let token = "";
  for (let page = 0; page < MAX_SEARCH_PAGES; page++) {
    const url =
      `${ctx.base}/${entitlement}/grants:search?callerRelationship=HAD_CREATED&pageSize=100${
        token ? `&pageToken=${encodeURIComponent(token)}` : ""
      }`;
    const j = await call(ctx, `Cannot list your grants of ${entitlement}`, {
      url,
      method: "GET",
      source,
    }, opts.call);
    const list = Array.isArray(j.grants) ? j.grants.slice(0, 100) : [];
    for (const g of list) {
      if (!g || typeof g !== "object" || !isGrantOf(g.name, entitlement)) continue;
      const grant = toGrant(g as Record<string, unknown>, entitlement);
      if (OPEN_STATES.has(grant.state)) out.push(grant);
    }
    token = typeof j.nextPageToken === "string" ? j.nextPageToken.slice(0, 1000) : "";
    if (!token) break;
  }
  return out;
}

/** Creates the PAM client. */
export function createPamClient(options: PamClientOptions): PamClient {
  const ctx: PamContext = {
    options,
    doFetch: options.fetch ?? ((i, init) => fetch(i, init)),
    timeoutMs: options.timeoutMs ?? 10_000,
    deadlineMs: options.deadlineMs ?? 30_000,
    base: `${options.endpoint}/v1`,
  };
  const base = ctx.base;
  return {
    async getEntitlement(source, name, o) {
      const j = await call(ctx, `Cannot read entitlement ${name}`, {
        url: `${base}/${name}`,
        method: "GET",
        source,
      }, o);
      const access = (j.privilegedAccess as { gcpIamAccess?: { roleBindings?: unknown } })
        ?.gcpIamAccess;
      const bindings = Array.isArray(access?.roleBindings) ? access.roleBindings : [];
      const roles = bindings.slice(0, 20).map((b) => (b as { role?: unknown })?.role)
        .filter((r): r is string => typeof r === "string").map((r) => sanitizeMessage(r, 100));
      return { name, roles, maxSeconds: parseDuration(j.maxRequestDuration) };
    },
    async createGrant(source, entitlement, g, o) {
      const url = `${base}/${entitlement}/grants?requestId=${encodeURIComponent(g.requestId)}`;
      const j = await call(ctx, `Cannot request a grant of ${entitlement}`, {
        url,
        method: "POST",
        source,
        body: JSON.stringify({
          requestedDuration: `${g.durationSeconds}s`,
          justification: { unstructuredJustification: g.justification },
        }),
      }, o);
      return toGrant(j, entitlement);
    },
    async getGrant(source, name, o) {
      const j = await call(ctx, `Cannot read grant ${name}`, {
        url: `${base}/${name}`,
        method: "GET",
        source,
      }, o);
      return toGrant(j, entitlementOf(name));
    },
    searchOwnGrants: (source, entitlement, o) =>
      searchOwnGrants(ctx, source, { entitlement, call: o }),
    async withdrawGrant(source, name, o) {
      const j = await call(ctx, `Cannot withdraw grant ${name}`, {
        url: `${base}/${name}:withdraw`,
        method: "POST",
        source,
        body: "{}",
      }, o);
      if (j.done === true) {
        if (j.error) throw operationError(`withdrawal of ${name}`, j.error);
        return undefined;
      }
      return typeof j.name === "string" && /^[A-Za-z0-9/_.-]{1,300}$/.test(j.name)
        ? j.name
        : undefined;
    },
    async operationDone(source, name, o) {
      const j = await call(ctx, `Cannot read operation ${name}`, {
        url: `${base}/${name}`,
        method: "GET",
        source,
      }, o);
      if (j.done !== true) return false;
      if (j.error) throw operationError(`operation ${name}`, j.error);
      return true;
    },
  };
}

/**
 * The status the gate reports: 409 for FAILED_PRECONDITION / ALREADY_EXISTS
 * (another open grant: look for it, do not retry), 429 and 5xx (as 502) for
 * retries, 404, else 403.
 */
export function pamStatus(status: number, text: string): number {
  let reason = "";
  try {
    reason = String(JSON.parse(text)?.error?.status ?? "");
  } catch { /* not JSON */ }
  if (status === 409 || reason === "FAILED_PRECONDITION" || reason === "ALREADY_EXISTS") return 409;
  return status === 429 ? 429 : status >= 500 ? 502 : status === 404 ? 404 : 403;
}

function operationError(what: string, e: unknown): GateError {
  const msg = (e as { message?: unknown })?.message;
  return new GateError(
    "upstream",
    `${what} failed: ${sanitizeMessage(typeof msg === "string" ? msg : "unknown error", 200)}`,
  );
}
