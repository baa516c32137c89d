/**
 * Direct calls to Google's IAM Credentials, tokeninfo and Resource Manager
 * APIs. Plain fetch with a deadline each, so the gate controls retries and
 * error text (google-auth-library is used only to turn ADC into a token).
 */
import type { Endpoints } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import { sanitizeMessage } from "../shared/redact.ts";

/** A minted token with its absolute expiry (ms since epoch). */
export interface MintedToken {
  readonly token: string;
  readonly expiresAt: number;
}

export type FetchFn = (input: string, init: RequestInit) => Promise<Response>;

/** Options for {@linkcode createGoogleApi}. */
export interface GoogleApiOptions {
  endpoints: Endpoints;
  fetch?: FetchFn;
  /** Deadline per upstream call (ms). */
  timeoutMs?: number;
}

export interface GoogleApi {
  generateAccessToken(
    source: string,
    serviceAccount: string,
    scopes: readonly string[],
    lifetimeSeconds: number,
  ): Promise<MintedToken>;
  generateIdToken(
    source: string,
    serviceAccount: string,
    audience: string,
    includeEmail: boolean,
  ): Promise<string>;
  tokenEmail(source: string): Promise<string>;
  projectNumber(source: string, project: string): Promise<string>;
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

/** Creates the Google API caller. */
export function createGoogleApi(options: GoogleApiOptions): GoogleApi {
  const doFetch: FetchFn = options.fetch ?? ((i, init) => fetch(i, init));
  const timeoutMs = options.timeoutMs ?? 15_000;
  const e = options.endpoints;

  async function call(what: string, url: string, init: RequestInit): Promise<unknown> {
    let res: Response;
    try {
      res = await doFetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      const timedOut = err instanceof DOMException && err.name === "TimeoutError";
      throw new GateError(
        timedOut ? "timeout" : "upstream",
        timedOut
          ? `${what}: Google did not answer within ${timeoutMs} ms`
          : `${what}: cannot reach ${new URL(url).host} (${
            sanitizeMessage(String((err as Error).message), 200)
          })`,
        { cause: err, status: timedOut ? 504 : 502 },
      );
    }
    const text = await res.text();
    if (!res.ok) {
      throw new GateError("upstream", `${what}: ${googleErrorMessage(res.status, text)}`, {
        status: res.status === 429 ? 429 : res.status >= 500 ? 502 : res.status === 404 ? 404 : 403,
      });
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new GateError("upstream", `${what}: Google answered with a body that is not JSON`);
    }
  }

  const iamUrl = (sa: string, verb: string): string =>
    `${e.iamcredentials}/v1/projects/-/serviceAccounts/${encodeURIComponent(sa)}:${verb}`;

  return {
    async generateAccessToken(source, sa, scopes, lifetime) {
      const j = await call(`Cannot mint token for "${sa}"`, iamUrl(sa, "generateAccessToken"), {
        method: "POST",
        headers: { authorization: `Bearer ${source}`, "content-type": "application/json" },
        body: JSON.stringify({ scope: scopes, lifetime: `${lifetime}s` }),
      }) as { accessToken?: unknown; expireTime?: unknown };
      const exp = typeof j.expireTime === "string" ? Date.parse(j.expireTime) : NaN;
      if (typeof j.accessToken !== "string" || !Number.isFinite(exp)) {
        throw new GateError(
          "upstream",
          `Cannot mint token for "${sa}": IAM answered without a token`,
        );
      }
      return { token: j.accessToken, expiresAt: exp };
    },
    async generateIdToken(source, sa, audience, includeEmail) {
      const j = await call(`Cannot mint ID token for "${sa}"`, iamUrl(sa, "generateIdToken"), {
        method: "POST",
        headers: { authorization: `Bearer ${source}`, "content-type": "application/json" },
        body: JSON.stringify({ audience, includeEmail }),
      }) as { token?: unknown };
      if (typeof j.token !== "string") {
        throw new GateError("upstream", `IAM answered without an ID token`);
      }
      return j.token;
    },
    async tokenEmail(source) {
      const j = await call("Cannot look up the engineer's identity", `${e.oauth2}/tokeninfo`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ access_token: source }).toString(),
      }) as { email?: unknown };
      if (typeof j.email !== "string") {
        throw new GateError(
          "upstream",
          "tokeninfo has no email: the ADC token lacks the userinfo.email scope",
        );
      }
      return j.email;
    },
    async projectNumber(source, project) {
      const j = await call(
        `Cannot look up project "${project}"`,
        `${e.cloudresourcemanager}/v3/projects/${encodeURIComponent(project)}`,
        {
          method: "GET",
          headers: { authorization: `Bearer ${source}` },
        },
      ) as { name?: unknown };
      const m = typeof j.name === "string" ? /^projects\/(\d+)$/.exec(j.name) : null;
      if (!m) {
        throw new GateError(
          "upstream",
          `Resource Manager answered without a project number for "${project}"`,
        );
      }
      return m[1]!;
    },
  };
}
