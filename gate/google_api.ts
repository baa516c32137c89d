/**
 * Direct calls to Google's OAuth2, STS, IAM Credentials, tokeninfo and
 * Resource Manager APIs. Plain fetch with a deadline per attempt and retries
 * within an overall deadline, so the gate controls retries and error text.
 */
import type { CoreEndpoints } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import { sanitizeMessage } from "../shared/redact.ts";
import { withRetry } from "./retry.ts";

/** A minted token with its absolute expiry (ms since epoch). */
export interface MintedToken {
  readonly token: string;
  readonly expiresAt: number;
}

export type FetchFn = (input: string, init: RequestInit) => Promise<Response>;

/** Options for {@linkcode createGoogleApi}. */
export interface GoogleApiOptions {
  endpoints: CoreEndpoints;
  fetch?: FetchFn;
  /** Deadline per attempt (ms). */
  timeoutMs?: number;
  /** Deadline for all attempts of one call, retries included (ms). */
  deadlineMs?: number;
  /** First retry backoff (ms). */
  baseDelayMs?: number;
  now?: () => number;
}

/** Per call: `requestReason` goes out as X-Goog-Request-Reason (prod sessions). */
export interface GoogleCallOptions {
  readonly requestReason?: string | undefined;
}

/** The calls the gate makes to Google. Every secret argument is sent, never logged. */
export interface GoogleApi {
  generateAccessToken(
    source: string,
    serviceAccount: string,
    scopes: readonly string[],
    lifetimeSeconds: number,
    options?: GoogleCallOptions,
  ): Promise<MintedToken>;
  generateIdToken(
    source: string,
    serviceAccount: string,
    audience: string,
    includeEmail: boolean,
  ): Promise<string>;
  tokenEmail(source: string): Promise<string>;
  projectNumber(source: string, project: string): Promise<string>;
  /** POSTs a form to an OAuth2 token endpoint (refresh_token or jwt-bearer grants). */
  oauthToken(url: string, form: Record<string, string>): Promise<MintedToken>;
  /** Exchanges a subject token at STS (workload identity federation). */
  stsExchange(url: string, body: Record<string, string>): Promise<MintedToken>;
  /** GETs text from a URL (URL-sourced external account subject tokens). */
  getText(url: string, headers: Record<string, string>): Promise<string>;
}

/** JSON calls to other Google APIs (the `accounts` / `can` subcommands use them). */
export interface GoogleJsonCalls {
  /**
   * Sends `init` to `url` with the same deadlines, retries and error text as
   * every other call, and returns the parsed JSON body. `what` starts each
   * error message ("Cannot list service accounts in …").
   */
  json(what: string, url: string, init: RequestInit): Promise<unknown>;
}

/** Extracts Google's error message from a JSON error body. */
export function googleErrorMessage(status: number, text: string): string {
  try {
    const j = JSON.parse(text);
    const e = j?.error;
    if (e && typeof e === "object") {
      return sanitizeMessage(
        `${e.code ?? status} ${e.status ?? ""}: ${e.message ?? ""}`.replace(/\s+:/, ":"),
        300,
      );
    }
    if (typeof e === "string") {
      return sanitizeMessage(
        `${status} ${e}${j.error_description ? `: ${j.error_description}` : ""}`,
        300,
      );
    }
  } catch { /* not JSON */ }
  return `HTTP ${status}`;
}

/**
 * True when an OAuth2 error body says the user's grant is gone: expired or
 * revoked refresh token, or a reauthentication (RAPT) requirement.
 */
export function isExpiredGrant(text: string): boolean {
  try {
    const j = JSON.parse(text);
    const e = j?.error;
    const sub = j?.error_subtype;
    if (e === "invalid_grant" || e === "invalid_rapt" || sub === "invalid_rapt") return true;
    const desc = typeof j?.error_description === "string" ? j.error_description : "";
    return e === "unauthorized_client" && /reauth/i.test(desc);
  } catch {
    return false;
  }
}

/** A fetch that threw: a timeout (504) or an unreachable host (502), saying which service. */
export function fetchFailure(
  err: unknown,
  at: { what: string; url: string; limitMs: number; service: string },
): GateError {
  const { what } = at;
  const timedOut = err instanceof DOMException && err.name === "TimeoutError";
  return new GateError(
    timedOut ? "timeout" : "upstream",
    timedOut
      ? `${what}: ${at.service} did not answer within ${at.limitMs} ms; try again`
      : `${what}: cannot reach ${new URL(at.url).host} (${
        sanitizeMessage(String((err as Error).message), 200)
      })`,
    { cause: err, status: timedOut ? 504 : 502 },
  );
}

function upstreamStatus(status: number): number {
  return status === 429 ? 429 : status >= 500 ? 502 : status === 404 ? 404 : 403;
}

/** What every call shares: the fetch, its deadlines, the clock, the endpoints. */
interface ApiContext {
  readonly options: GoogleApiOptions;
  readonly doFetch: FetchFn;
  readonly timeoutMs: number;
  readonly deadlineMs: number;
  readonly now: () => number;
}

/** One attempt: the body text of a 2xx answer, or a GateError saying what failed. */
async function once(
  ctx: ApiContext,
  request: { what: string; url: string; init: RequestInit },
  attemptMs: number,
): Promise<string> {
  const { what, url, init } = request;
  let res: Response;
  const limit = Math.min(ctx.timeoutMs, attemptMs);
  try {
    res = await ctx.doFetch(url, { ...init, signal: AbortSignal.timeout(limit) });
  } catch (err) {
    throw fetchFailure(err, { what, url, limitMs: limit, service: "Google" });
  }
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    throw new GateError("timeout", `${what}: Google's answer was cut off; try again`, {
      cause: err,
      status: 504,
    });
  }
  if (!res.ok) {
    if (res.status === 400 && isExpiredGrant(text)) {
      throw new GateError(
        "credentials_expired",
        `${what}: ${googleErrorMessage(res.status, text)}`,
      );
    }
    throw new GateError("upstream", `${what}: ${googleErrorMessage(res.status, text)}`, {
      status: upstreamStatus(res.status),
    });
  }
  return text;
}

/** A JSON call with retries within the deadline. */
async function call(ctx: ApiContext, what: string, req: { url: string; init: RequestInit }) {
  const { options } = ctx;
  const text = await withRetry(
    (remaining) => once(ctx, { what, url: req.url, init: req.init }, remaining),
    {
      deadlineMs: ctx.deadlineMs,
      ...(options.baseDelayMs === undefined ? {} : { baseDelayMs: options.baseDelayMs }),
      ...(options.now === undefined ? {} : { now: options.now }),
    },
  );
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new GateError("upstream", `${what}: Google answered with a body that is not JSON`);
  }
}

function bearerToken(ctx: ApiContext, what: string, j: Record<string, unknown>): MintedToken {
  const token = j.access_token;
  const expiresIn = Number(j.expires_in ?? 3600);
  if (typeof token !== "string" || token === "") {
    throw new GateError("upstream", `${what}: Google answered without an access token`);
  }
  return {
    token,
    expiresAt: ctx.now() +
      (Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : 3600) * 1000,
  };
}

function iamUrl(ctx: ApiContext, sa: string, verb: string): string {
  return `${ctx.options.endpoints.iamcredentials}/v1/projects/-/serviceAccounts/${
    encodeURIComponent(sa)
  }:${verb}`;
}

const generateAccessToken = async (
  ctx: ApiContext,
  ...[source, sa, scopes, lifetime, o]: Parameters<GoogleApi["generateAccessToken"]>
): Promise<MintedToken> => {
  const headers: Record<string, string> = {
    authorization: `Bearer ${source}`,
    "content-type": "application/json",
  };
  if (o?.requestReason) headers["x-goog-request-reason"] = o.requestReason;
  const j = await call(ctx, `Cannot mint token for "${sa}"`, {
    url: iamUrl(ctx, sa, "generateAccessToken"),
    init: {
      method: "POST",
      headers,
      body: JSON.stringify({ scope: scopes, lifetime: `${lifetime}s` }),
    },
  }) as { accessToken?: unknown; expireTime?: unknown };
  const exp = typeof j.expireTime === "string" ? Date.parse(j.expireTime) : NaN;
  if (typeof j.accessToken !== "string" || !Number.isFinite(exp)) {
    throw new GateError("upstream", `Cannot mint token for "${sa}": IAM answered without a token`);
  }
  return { token: j.accessToken, expiresAt: exp };
};

const generateIdToken = async (
  ctx: ApiContext,
  ...[source, sa, audience, includeEmail]: Parameters<GoogleApi["generateIdToken"]>
): Promise<string> => {
  const j = await call(ctx, `Cannot mint ID token for "${sa}"`, {
    url: iamUrl(ctx, sa, "generateIdToken"),
    init: {
      method: "POST",
      headers: { authorization: `Bearer ${source}`, "content-type": "application/json" },
      body: JSON.stringify({ audience, includeEmail }),
    },
  }) as { token?: unknown };
  if (typeof j.token !== "string") {
    throw new GateError("upstream", `IAM answered without an ID token for "${sa}"`);
  }
  return j.token;
};

async function tokenEmail(ctx: ApiContext, source: string): Promise<string> {
  const j = await call(ctx, "Cannot look up the engineer's identity", {
    url: `${ctx.options.endpoints.oauth2}/tokeninfo`,
    init: {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ access_token: source }).toString(),
    },
  }) as { email?: unknown };
  if (typeof j.email !== "string") {
    throw new GateError(
      "upstream",
      "tokeninfo has no email: the ADC token lacks the userinfo.email scope; run gcloud auth application-default login again",
    );
  }
  return j.email;
}

async function projectNumber(ctx: ApiContext, source: string, project: string): Promise<string> {
  const j = await call(ctx, `Cannot look up project "${project}"`, {
    url: `${ctx.options.endpoints.cloudresourcemanager}/v3/projects/${encodeURIComponent(project)}`,
    init: { method: "GET", headers: { authorization: `Bearer ${source}` } },
  }) as { name?: unknown };
  const m = typeof j.name === "string" ? /^projects\/(\d+)$/.exec(j.name) : null;
  if (!m) {
    throw new GateError(
      "upstream",
      `Resource Manager answered without a project number for "${project}"`,
    );
  }
  return m[1]!;
}

/** A form POST answered with an OAuth2 bearer token (token refresh, STS exchange). */
async function formToken(
  ctx: ApiContext,
  what: string,
  req: { url: string; form: Record<string, string> },
): Promise<MintedToken> {
  const j = await call(ctx, what, {
    url: req.url,
    init: {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(req.form).toString(),
    },
  }) as Record<string, unknown>;
  return bearerToken(ctx, what, j);
}

/** Creates the Google API caller. */
export function createGoogleApi(options: GoogleApiOptions): GoogleApi & GoogleJsonCalls {
  const ctx: ApiContext = {
    options,
    doFetch: options.fetch ?? ((i, init) => fetch(i, init)),
    timeoutMs: options.timeoutMs ?? 10_000,
    deadlineMs: options.deadlineMs ?? 30_000,
    now: options.now ?? Date.now,
  };
  return {
    json: (what, url, init) => call(ctx, what, { url, init }),
    generateAccessToken: (...args) => generateAccessToken(ctx, ...args),
    generateIdToken: (...args) => generateIdToken(ctx, ...args),
    tokenEmail: (source) => tokenEmail(ctx, source),
    projectNumber: (source, project) => projectNumber(ctx, source, project),
    oauthToken: (url, form) =>
      formToken(ctx, "Cannot refresh the Application Default Credentials", { url, form }),
    stsExchange: (url, body) =>
      formToken(ctx, "Cannot exchange the workload identity token at STS", { url, form: body }),
    getText: (url, headers) =>
      withRetry(
        (remaining) =>
          once(ctx, {
            what: "Cannot read the external account's subject token",
            url,
            init: { method: "GET", headers },
          }, remaining),
        { deadlineMs: ctx.deadlineMs },
      ),
  };
}
