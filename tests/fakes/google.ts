/**
 * A local HTTP fake of the Google APIs the gate talks to — the only fake in
 * the project. Mounted under path prefixes so one server stands in for every
 * `[endpoints]` base URL:
 *
 *   oauth2               <base>/oauth2   POST /token, GET|POST /tokeninfo
 *   iamcredentials       <base>/iam      POST /v1/projects/-/serviceAccounts/<sa>:generateAccessToken|generateIdToken
 *   cloudresourcemanager <base>/crm      GET /v3/projects/<id>
 *   sts                  <base>/sts      POST /v1/token
 *   privilegedaccessmanager <base>/pam   v1 entitlements and grants (tests/fakes/google_pam.ts)
 *
 * IAM inspection APIs and a stricter STS live in ./google_iam.ts (options.iam).
 *
 * It records every request and can inject faults (status, body, delay).
 * Every token it issues starts with {@linkcode FAKE_TOKEN_PREFIX} so tests can
 * scan whole logs for leaks.
 */
import { type FakeIamOptions, fakeIamRoute } from "./google_iam.ts";
import { createFakePam, type FakePam, type FakePamOptions } from "./google_pam.ts";

export const FAKE_TOKEN_PREFIX = "ya29.FAKE";
export const FAKE_REFRESH_TOKEN = "1//FAKE-refresh-token-0123456789abcdef";
export const FAKE_CLIENT_SECRET = "FAKE-client-secret-d0nt-leak";
export const FAKE_CLIENT_ID = "fake-client.apps.googleusercontent.com";
export const FAKE_ENGINEER = "engineer@example.com";

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly at: number;
}

export interface Fault {
  /** Matched against `<METHOD> <path>` (path without query). */
  match: RegExp;
  status?: number;
  body?: unknown;
  delayMs?: number;
  /** How many requests it applies to (default: 1; Infinity for all). */
  times?: number;
  /** Headers to set on the faulty answer (e.g. a skewed `date`); needs `status`. */
  headers?: Record<string, string>;
}

export interface IssuedToken {
  token: string;
  kind: "adc" | "sa" | "id";
  email: string;
  scopes: string[];
  expiresAt: number;
}

export interface FakeGoogle extends AsyncDisposable {
  readonly base: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
  /** Requests whose `METHOD path` matches. */
  count(match: RegExp): number;
  inject(fault: Fault): void;
  clearFaults(): void;
  /** Every secret it ever handed out (for leak scans). */
  secrets(): string[];
  issued(): readonly IssuedToken[];
  /** Makes the refresh token invalid (as after a password change). */
  revokeRefreshToken(): void;
  restoreRefreshToken(): void;
  /** An `authorized_user` ADC JSON pointing at this fake. */
  adcJson(): string;
  /** Privileged Access Manager: grants, the approver, states. */
  readonly pam: FakePam;
  /** `[endpoints]` TOML table pointing at this fake. */
  endpointsToml(): string;
  endpoints(): {
    oauth2: string;
    iamcredentials: string;
    cloudresourcemanager: string;
    sts: string;
    privilegedaccessmanager: string;
  };
  close(): Promise<void>;
}

export interface FakeGoogleOptions {
  /** Projects known to Resource Manager: id → number. */
  projects?: Record<string, string>;
  engineer?: string;
  /** Seconds issued tokens live (default 3599 / asked lifetime). */
  adcTokenSeconds?: number;
  /**
   * Longest generateAccessToken `lifetime` accepted (default 3600, Google's
   * default; up to 43200 where the org policy
   * constraints/iam.allowServiceAccountCredentialLifetimeExtension allows it).
   */
  maxSaTokenSeconds?: number;
  port?: number;
  /** Service accounts, permissions and federation rules (see ./google_iam.ts). */
  iam?: FakeIamOptions;
  pam?: FakePamOptions;
}

function b64url(s: string): string {
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

function googleError(status: number, message: string, reason = "FAILED"): Response {
  const statusText: Record<number, string> = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
  };
  return Response.json(
    { error: { code: status, message, status: statusText[status] ?? reason } },
    { status },
  );
}

/** Starts the fake on 127.0.0.1 (random port unless given). */
export function startFakeGoogle(options: FakeGoogleOptions = {}): Promise<FakeGoogle> {
  const projects: Record<string, string> = { "demo-project": "123456789012", ...options.projects };
  const engineer = options.engineer ?? FAKE_ENGINEER;
  const requests: RecordedRequest[] = [];
  const faults: (Fault & { left: number })[] = [];
  const tokens = new Map<string, IssuedToken>();
  let refreshValid = true;
  const pam = createFakePam(options.pam);
  let counter = 0;

  function issue(
    kind: IssuedToken["kind"],
    email: string,
    scopes: string[],
    seconds: number,
  ): IssuedToken {
    counter++;
    const rand = crypto.randomUUID().replaceAll("-", "");
    const t: IssuedToken = {
      token: `${FAKE_TOKEN_PREFIX}-${kind}-${counter}-${rand}`,
      kind,
      email,
      scopes,
      expiresAt: Date.now() + seconds * 1000,
    };
    tokens.set(t.token, t);
    return t;
  }

  function bearer(req: Request): IssuedToken | undefined {
    const auth = req.headers.get("authorization") ?? "";
    const m = /^Bearer (.+)$/.exec(auth);
    const t = m ? tokens.get(m[1]!) : undefined;
    return t && t.expiresAt > Date.now() ? t : undefined;
  }

  function route(req: Request, url: URL, body: string): Response {
    const inspected = fakeIamRoute(req, url, body, options.iam ?? {}, { bearer, issue });
    if (inspected) return inspected;
    const p = url.pathname;
    if (req.method === "POST" && p === "/oauth2/token") {
      const form = new URLSearchParams(body);
      const grant = form.get("grant_type");
      if (grant === "refresh_token") {
        if (
          form.get("refresh_token") !== FAKE_REFRESH_TOKEN || !refreshValid ||
          form.get("client_secret") !== FAKE_CLIENT_SECRET
        ) {
          return Response.json(
            { error: "invalid_grant", error_description: "Token has been expired or revoked." },
            { status: 400 },
          );
        }
        const t = issue(
          "adc",
          engineer,
          ["https://www.googleapis.com/auth/cloud-platform"],
          options.adcTokenSeconds ?? 3599,
        );
        return Response.json({
          access_token: t.token,
          expires_in: Math.round((t.expiresAt - Date.now()) / 1000),
          token_type: "Bearer",
          scope: t.scopes.join(" "),
        });
      }
      if (grant === "urn:ietf:params:oauth:grant-type:jwt-bearer") {
        const assertion = form.get("assertion") ?? "";
        let email = "sa-key@demo-project.iam.gserviceaccount.com";
        try {
          const claims = JSON.parse(
            atob((assertion.split(".")[1] ?? "").replaceAll("-", "+").replaceAll("_", "/")),
          );
          if (typeof claims.iss === "string") email = claims.iss;
        } catch { /* keep default */ }
        const t = issue("adc", email, ["https://www.googleapis.com/auth/cloud-platform"], 3599);
        return Response.json({ access_token: t.token, expires_in: 3599, token_type: "Bearer" });
      }
      return Response.json({ error: "unsupported_grant_type" }, { status: 400 });
    }
    if (p === "/oauth2/tokeninfo") {
      const form = new URLSearchParams(body);
      const at = url.searchParams.get("access_token") ?? form.get("access_token") ?? "";
      const t = tokens.get(at);
      if (!t || t.expiresAt < Date.now()) {
        return Response.json({ error: "invalid_token", error_description: "Invalid Value" }, {
          status: 400,
        });
      }
      return Response.json({
        email: t.email,
        email_verified: "true",
        scope: t.scopes.join(" "),
        expires_in: String(Math.round((t.expiresAt - Date.now()) / 1000)),
        azp: FAKE_CLIENT_ID,
      });
    }
    if (req.method === "POST" && p === "/sts/v1/token") {
      const t = issue("adc", "federated@example.com", [
        "https://www.googleapis.com/auth/cloud-platform",
      ], 3599);
      return Response.json({
        access_token: t.token,
        issued_token_type: "urn:ietf:params:oauth:token-type:access_token",
        token_type: "Bearer",
        expires_in: 3599,
      });
    }
    const iam =
      /^\/iam\/v1\/projects\/-\/serviceAccounts\/([^/:]+):(generateAccessToken|generateIdToken)$/
        .exec(p);
    if (req.method === "POST" && iam) {
      const caller = bearer(req);
      if (!caller) return googleError(401, "Request had invalid authentication credentials.");
      const sa = decodeURIComponent(iam[1]!);
      if (!sa.endsWith(".iam.gserviceaccount.com")) {
        return googleError(404, `Not found; Gaia id not found for email ${sa}`);
      }
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(body || "{}");
      } catch {
        return googleError(400, "Invalid JSON payload received.");
      }
      if (iam[2] === "generateAccessToken") {
        const scopes = Array.isArray(json.scope) ? json.scope.map(String) : [];
        if (scopes.length === 0) return googleError(400, "Scope is required.");
        const m = /^(\d+)s$/.exec(String(json.lifetime ?? "3600s"));
        const lifetime = m ? Number(m[1]) : NaN;
        if (!(lifetime >= 1 && lifetime <= 43200)) return googleError(400, "Invalid lifetime.");
        const cap = options.maxSaTokenSeconds ?? 3600;
        if (lifetime > cap) {
          // Google's answer without the lifetime-extension org policy.
          return googleError(
            400,
            `Requested lifetime ${lifetime}s exceeds the maximum allowed lifetime of ${cap}s; longer lifetimes need the constraints/iam.allowServiceAccountCredentialLifetimeExtension organization policy.`,
          );
        }
        const t = issue("sa", sa, scopes, lifetime);
        return Response.json({
          accessToken: t.token,
          expireTime: new Date(t.expiresAt).toISOString(),
        });
      }
      const audience = typeof json.audience === "string" ? json.audience : "";
      if (!audience) return googleError(400, "Audience is required.");
      const now = Math.floor(Date.now() / 1000);
      const claims: Record<string, unknown> = {
        iss: "https://accounts.google.com",
        aud: audience,
        azp: sa,
        sub: "1234567890",
        iat: now,
        exp: now + 3600,
      };
      if (json.includeEmail) Object.assign(claims, { email: sa, email_verified: true });
      const jwt = `${b64url(JSON.stringify({ alg: "RS256", kid: "fake", typ: "JWT" }))}.${
        b64url(JSON.stringify(claims))
      }.${b64url(`FAKE-SIG-${crypto.randomUUID()}`)}`;
      tokens.set(jwt, {
        token: jwt,
        kind: "id",
        email: sa,
        scopes: [],
        expiresAt: Date.now() + 3600_000,
      });
      return Response.json({ token: jwt });
    }
    const crm = /^\/crm\/v3\/projects\/([^/]+)$/.exec(p);
    if (req.method === "GET" && crm) {
      if (!bearer(req)) return googleError(401, "Request had invalid authentication credentials.");
      const id = decodeURIComponent(crm[1]!);
      const num = projects[id];
      if (!num) {
        return googleError(
          403,
          `Permission denied on resource project ${id} (or it may not exist).`,
        );
      }
      return Response.json({
        name: `projects/${num}`,
        projectId: id,
        state: "ACTIVE",
        displayName: id,
      });
    }
    if (p.startsWith("/pam/")) return pam.route(req, url, body, bearer(req)?.email);
    return googleError(404, `fake google: no route for ${req.method} ${p}`);
  }

  async function handler(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const body = req.method === "GET" || req.method === "HEAD" ? "" : await req.text();
    requests.push({
      method: req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: Object.fromEntries(req.headers),
      body,
      at: Date.now(),
    });
    const key = `${req.method} ${url.pathname}`;
    const fault = faults.find((f) => f.left > 0 && f.match.test(key));
    if (fault) {
      fault.left--;
      if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
      if (fault.status) {
        const res = fault.body === undefined
          ? googleError(fault.status, `injected fault ${fault.status}`)
          : Response.json(fault.body, { status: fault.status });
        for (const [k, v] of Object.entries(fault.headers ?? {})) res.headers.set(k, v);
        return res;
      }
    }
    return route(req, url, body);
  }

  const ac = new AbortController();
  return new Promise((resolve) => {
    const server = Deno.serve(
      {
        hostname: "127.0.0.1",
        port: options.port ?? 0,
        signal: ac.signal,
        onListen: (addr) => {
          const port = addr.port;
          const base = `http://127.0.0.1:${port}`;
          const endpoints = () => ({
            oauth2: `${base}/oauth2`,
            iamcredentials: `${base}/iam`,
            cloudresourcemanager: `${base}/crm`,
            sts: `${base}/sts`,
            privilegedaccessmanager: `${base}/pam`,
          });
          const close = async () => {
            ac.abort();
            await server.finished;
          };
          resolve({
            base,
            port,
            requests,
            count: (match) => requests.filter((r) => match.test(`${r.method} ${r.path}`)).length,
            inject: (fault) => faults.push({ ...fault, left: fault.times ?? 1 }),
            clearFaults: () => void faults.splice(0),
            secrets: () => [...tokens.keys(), FAKE_REFRESH_TOKEN, FAKE_CLIENT_SECRET],
            issued: () => [...tokens.values()],
            revokeRefreshToken: () => void (refreshValid = false),
            restoreRefreshToken: () => void (refreshValid = true),
            adcJson: () =>
              JSON.stringify({
                type: "authorized_user",
                client_id: FAKE_CLIENT_ID,
                client_secret: FAKE_CLIENT_SECRET,
                refresh_token: FAKE_REFRESH_TOKEN,
              }),
            endpoints,
            pam,
            endpointsToml: () => {
              const e = endpoints();
              return `[endpoints]\noauth2 = "${e.oauth2}"\niamcredentials = "${e.iamcredentials}"\ncloudresourcemanager = "${e.cloudresourcemanager}"\nsts = "${e.sts}"\nprivilegedaccessmanager = "${e.privilegedaccessmanager}"\n`;
            },
            close,
            [Symbol.asyncDispose]: close,
          });
        },
      },
      handler,
    );
  });
}
