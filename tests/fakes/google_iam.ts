/**
 * The IAM part of the fake Google (wired into tests/fakes/google.ts): who may
 * do what, asked the way `gcp-gate accounts` and `gcp-gate can` ask, and an
 * STS that accepts only the subject tokens a test says it accepts.
 *
 *   iam (API)            <base>/iamapi    GET  /v1/projects/<p>/serviceAccounts
 *                                         POST /v1/projects/<p|->/serviceAccounts/<email>:testIamPermissions
 *   cloudresourcemanager <base>/crm       POST /v3/projects/<id>:testIamPermissions
 *   storage              <base>/storage   GET  /storage/v1/b/<bucket>/iam/testPermissions?permissions=…
 *   pubsub               <base>/pubsub    POST /v1/projects/<p>/(topics|subscriptions)/<id>:testIamPermissions
 *   bigquery             <base>/bigquery  POST /bigquery/v2/projects/<p>/datasets/<d>/tables/<t>:testIamPermissions
 *   sts (federation set) <base>/sts       POST /v1/token
 *
 * Permissions are granted per full resource name and principal email; the
 * principal is whoever the bearer token was issued to.
 */

/** What the fake knows about IAM. */
export interface FakeIamOptions {
  /** Service accounts per project id. */
  readonly serviceAccounts?: Readonly<Record<string, readonly string[]>>;
  /**
   * Full resource name → principal email → permissions held. Service
   * accounts are named with their own project
   * (`//iam.googleapis.com/projects/P/serviceAccounts/E`); listing a
   * project's accounts needs `iam.serviceAccounts.list` on
   * `//cloudresourcemanager.googleapis.com/projects/P`.
   */
  readonly grants?: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>>;
  /**
   * When set, STS accepts a subject token only when this returns the
   * principal the federated token is for (undefined: refused).
   */
  readonly federation?: (subjectToken: string, form: URLSearchParams) => string | undefined;
}

/** What the IAM routes need from the main fake. */
export interface FakeIamContext {
  bearer(req: Request): { readonly email: string } | undefined;
  issue(
    kind: "adc",
    email: string,
    scopes: string[],
    seconds: number,
  ): { readonly token: string; readonly expiresAt: number };
}

/** The `[endpoints]` lines for the inspection APIs (append after the fake's endpointsToml()). */
export function iamEndpointsToml(base: string): string {
  return [
    `iam = "${base}/iamapi"`,
    `storage = "${base}/storage"`,
    `pubsub = "${base}/pubsub"`,
    `bigquery = "${base}/bigquery"`,
    "",
  ].join("\n");
}

function error(status: number, message: string, statusText: string): Response {
  return Response.json({ error: { code: status, message, status: statusText } }, { status });
}

const unauthenticated = (): Response =>
  error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED");

function projectOf(email: string): string {
  return /@([^.]+)\.iam\.gserviceaccount\.com$/.exec(email)?.[1] ?? "unknown";
}

function permissionsOf(body: string): string[] {
  try {
    const j = JSON.parse(body || "{}");
    return Array.isArray(j.permissions) ? j.permissions.map(String) : [];
  } catch {
    return [];
  }
}

function heldBy(
  options: FakeIamOptions,
  resource: string,
  principal: string,
  asked: readonly string[],
): string[] {
  const held = new Set(options.grants?.[resource]?.[principal] ?? []);
  return asked.filter((p) => held.has(p));
}

/** `{permissions}` omitted when none is held, as Google does. */
function answer(held: string[], extra: Record<string, unknown> = {}): Response {
  return Response.json(held.length ? { ...extra, permissions: held } : extra);
}

function listAccounts(
  options: FakeIamOptions,
  project: string,
  principal: string,
  url: URL,
): Response {
  const crm = `//cloudresourcemanager.googleapis.com/projects/${project}`;
  if (heldBy(options, crm, principal, ["iam.serviceAccounts.list"]).length === 0) {
    return error(
      403,
      `Permission 'iam.serviceAccounts.list' denied on resource (or it may not exist).`,
      "PERMISSION_DENIED",
    );
  }
  const all = options.serviceAccounts?.[project] ?? [];
  const size = Math.min(100, Math.max(1, Number(url.searchParams.get("pageSize") ?? "100") || 100));
  const from = Number(url.searchParams.get("pageToken") ?? "0") || 0;
  const page = all.slice(from, from + size).map((email) => ({
    name: `projects/${project}/serviceAccounts/${email}`,
    projectId: project,
    email,
    displayName: email.split("@")[0],
  }));
  const next = from + size < all.length ? String(from + size) : undefined;
  return Response.json({ accounts: page, ...(next ? { nextPageToken: next } : {}) });
}

function federatedToken(options: FakeIamOptions, body: string, ctx: FakeIamContext): Response {
  const form = new URLSearchParams(body);
  const principal = options.federation!(form.get("subject_token") ?? "", form);
  if (!principal) {
    return Response.json(
      { error: "invalid_grant", error_description: "The subject token is invalid or expired." },
      { status: 400 },
    );
  }
  const t = ctx.issue("adc", principal, ["https://www.googleapis.com/auth/cloud-platform"], 3599);
  return Response.json({
    access_token: t.token,
    issued_token_type: "urn:ietf:params:oauth:token-type:access_token",
    token_type: "Bearer",
    expires_in: 3599,
  });
}

/** Answers the routes above; undefined for every other request (the main fake's). */
export function fakeIamRoute(
  req: Request,
  url: URL,
  body: string,
  options: FakeIamOptions,
  ctx: FakeIamContext,
): Response | undefined {
  const p = url.pathname;
  if (req.method === "POST" && p === "/sts/v1/token" && options.federation) {
    return federatedToken(options, body, ctx);
  }
  const d = decodeURIComponent;
  const list = /^\/iamapi\/v1\/projects\/([^/]+)\/serviceAccounts$/.exec(p);
  const sa = /^\/iamapi\/v1\/projects\/([^/]+)\/serviceAccounts\/([^/:]+):testIamPermissions$/
    .exec(p);
  const crm = /^\/crm\/v3\/projects\/([^/:]+):testIamPermissions$/.exec(p);
  const bucket = /^\/storage\/storage\/v1\/b\/([^/]+)\/iam\/testPermissions$/.exec(p);
  const pubsub =
    /^\/pubsub\/v1\/projects\/([^/]+)\/(topics|subscriptions)\/([^/:]+):testIamPermissions$/
      .exec(p);
  const table =
    /^\/bigquery\/bigquery\/v2\/projects\/([^/]+)\/datasets\/([^/]+)\/tables\/([^/:]+):testIamPermissions$/
      .exec(p);
  if (!list && !sa && !crm && !bucket && !pubsub && !table) return undefined;
  const caller = ctx.bearer(req);
  if (!caller) return unauthenticated();
  const who = caller.email;
  if (list && req.method === "GET") return listAccounts(options, d(list[1]!), who, url);
  if (sa && req.method === "POST") {
    const email = d(sa[2]!);
    const project = sa[1] === "-" ? projectOf(email) : d(sa[1]!);
    if (!(options.serviceAccounts?.[project] ?? []).includes(email)) {
      return error(404, `Service account ${email} does not exist.`, "NOT_FOUND");
    }
    const name = `//iam.googleapis.com/projects/${project}/serviceAccounts/${email}`;
    return answer(heldBy(options, name, who, permissionsOf(body)));
  }
  if (crm && req.method === "POST") {
    const name = `//cloudresourcemanager.googleapis.com/projects/${d(crm[1]!)}`;
    return answer(heldBy(options, name, who, permissionsOf(body)));
  }
  if (bucket && req.method === "GET") {
    const name = `//storage.googleapis.com/projects/_/buckets/${d(bucket[1]!)}`;
    return answer(heldBy(options, name, who, url.searchParams.getAll("permissions")), {
      kind: "storage#testIamPermissionsResponse",
    });
  }
  if (pubsub && req.method === "POST") {
    const name = `//pubsub.googleapis.com/projects/${d(pubsub[1]!)}/${pubsub[2]}/${d(pubsub[3]!)}`;
    return answer(heldBy(options, name, who, permissionsOf(body)));
  }
  if (table && req.method === "POST") {
    const name = `//bigquery.googleapis.com/projects/${d(table[1]!)}/datasets/${
      d(table[2]!)
    }/tables/${d(table[3]!)}`;
    return answer(heldBy(options, name, who, permissionsOf(body)));
  }
  return error(405, `fake google: ${req.method} not allowed on ${p}`, "INVALID_ARGUMENT");
}
