/**
 * Privileged Access Manager v1 in the fake Google (mounted at `<base>/pam`):
 * entitlements, grants (create with `requestId`, get, search, withdraw with a
 * long-running operation), every grant state, an approver a test drives
 * (`approve`, `deny`, `setState`), and PAM's rule of one open grant per
 * entitlement and requester (a second create is FAILED_PRECONDITION).
 * Time-driven changes (activation, the grant's end, a 24 h request expiry)
 * happen lazily when a grant is read. Faults and the request log are the
 * fake's own (`inject`, `requests`).
 */

export interface FakeEntitlement {
  readonly name: string;
  readonly roles: readonly string[];
  /** Whether a grant waits in APPROVAL_AWAITED for a teammate. */
  readonly approvalRequired: boolean;
  readonly maxSeconds: number;
}

export interface FakeGrant {
  readonly name: string;
  readonly entitlement: string;
  readonly requester: string;
  readonly requestId: string | undefined;
  readonly durationSeconds: number;
  readonly justification: string;
  readonly createdAt: number;
  state: string;
  activateAt: number | undefined;
  activatedAt: number | undefined;
}

export interface FakePamOptions {
  /** Entitlements besides {@linkcode DEFAULT_ENTITLEMENT}. */
  entitlements?: FakeEntitlement[];
  /** ACTIVATING → ACTIVE after this long (default 200 ms). */
  activationMs?: number;
  /** APPROVAL_AWAITED → EXPIRED after this long (default 24 h). */
  approvalExpiryMs?: number;
}

export interface FakePam {
  /** Answers a `/pam/…` request; `caller` is the bearer token's principal. */
  route(req: Request, url: URL, body: string, caller: string | undefined): Response;
  grants(): readonly FakeGrant[];
  /** The approver says yes (APPROVAL_AWAITED → ACTIVATING → ACTIVE). */
  approve(name: string): void;
  deny(name: string): void;
  /** Any state, e.g. ENDED (an admin or the clock ended it) or EXPIRED. */
  setState(name: string, state: string): void;
}

export const DEFAULT_ENTITLEMENT =
  "projects/demo-project/locations/global/entitlements/prod-access";
export const APPROVAL_ENTITLEMENT =
  "projects/demo-project/locations/global/entitlements/prod-approval";

const OPEN = new Set(["APPROVAL_AWAITED", "SCHEDULED", "ACTIVATING", "ACTIVE"]);
const TERMINAL = new Set([
  "DENIED",
  "ACTIVATION_FAILED",
  "EXPIRED",
  "REVOKED",
  "ENDED",
  "WITHDRAWN",
]);
const ENT = String
  .raw`(?:projects|folders|organizations)/[^/]+/locations/[^/]+/entitlements/[^/:]+`;

function error(status: number, code: string, message: string): Response {
  return Response.json({ error: { code: status, message, status: code } }, { status });
}

/** Creates the PAM part of the fake. */
export function createFakePam(options: FakePamOptions = {}): FakePam {
  const activationMs = options.activationMs ?? 200;
  const expiryMs = options.approvalExpiryMs ?? 24 * 3600_000;
  const entitlements = new Map<string, FakeEntitlement>();
  for (
    const e of [
      { name: DEFAULT_ENTITLEMENT, roles: ["roles/run.admin"], approvalRequired: false },
      { name: APPROVAL_ENTITLEMENT, roles: ["roles/owner"], approvalRequired: true },
    ]
  ) entitlements.set(e.name, { ...e, maxSeconds: 86400 });
  for (const e of options.entitlements ?? []) entitlements.set(e.name, e);
  const grants = new Map<string, FakeGrant>();
  const operations = new Map<string, string>();
  let counter = 0;

  /** Applies what the clock did since the grant was last read. */
  function tick(g: FakeGrant): FakeGrant {
    const now = Date.now();
    if (g.state === "APPROVAL_AWAITED" && now - g.createdAt >= expiryMs) g.state = "EXPIRED";
    if (g.state === "ACTIVATING" && g.activateAt !== undefined && now >= g.activateAt) {
      g.state = "ACTIVE";
      g.activatedAt = g.activateAt;
    }
    if (
      g.state === "ACTIVE" && g.activatedAt !== undefined &&
      now >= g.activatedAt + g.durationSeconds * 1000
    ) g.state = "ENDED";
    return g;
  }

  function json(g: FakeGrant): Record<string, unknown> {
    const events: Record<string, unknown>[] = [
      { eventTime: new Date(g.createdAt).toISOString(), requested: {} },
    ];
    if (g.activatedAt !== undefined) {
      events.push({ eventTime: new Date(g.activatedAt).toISOString(), activated: {} });
    }
    return {
      name: g.name,
      createTime: new Date(g.createdAt).toISOString(),
      requester: g.requester,
      requestedDuration: `${g.durationSeconds}s`,
      justification: { unstructuredJustification: g.justification },
      state: g.state,
      timeline: { events },
      privilegedAccess: {
        gcpIamAccess: {
          resourceType: "cloudresourcemanager.googleapis.com/Project",
          resource: "//cloudresourcemanager.googleapis.com/projects/demo-project",
          roleBindings: entitlements.get(g.entitlement)?.roles.map((role) => ({ role })) ?? [],
        },
      },
    };
  }

  function activate(g: FakeGrant): void {
    g.state = "ACTIVATING";
    g.activateAt = Date.now() + activationMs;
  }

  function create(ent: FakeEntitlement, url: URL, body: string, caller: string): Response {
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(body || "{}");
    } catch {
      return error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    }
    const requestId = url.searchParams.get("requestId") ?? undefined;
    if (requestId !== undefined) {
      const same = [...grants.values()].find((g) =>
        g.requestId === requestId && g.entitlement === ent.name && g.requester === caller
      );
      if (same) return Response.json(json(tick(same)));
    }
    const m = /^(\d+)s$/.exec(String(j.requestedDuration ?? ""));
    const seconds = m ? Number(m[1]) : NaN;
    if (!(seconds >= 1 && seconds <= ent.maxSeconds)) {
      return error(
        400,
        "INVALID_ARGUMENT",
        `requested_duration must be at most ${ent.maxSeconds}s`,
      );
    }
    const open = [...grants.values()].find((g) =>
      g.entitlement === ent.name && g.requester === caller && OPEN.has(tick(g).state)
    );
    if (open) {
      return error(
        400,
        "FAILED_PRECONDITION",
        `You already have an open grant ${open.name} for this entitlement.`,
      );
    }
    const just = (j.justification as { unstructuredJustification?: unknown } | undefined)
      ?.unstructuredJustification;
    const g: FakeGrant = {
      name: `${ent.name}/grants/fake-grant-${++counter}`,
      entitlement: ent.name,
      requester: caller,
      requestId,
      durationSeconds: seconds,
      justification: typeof just === "string" ? just : "",
      createdAt: Date.now(),
      state: "APPROVAL_AWAITED",
      activateAt: undefined,
      activatedAt: undefined,
    };
    if (!ent.approvalRequired) activate(g);
    grants.set(g.name, g);
    return Response.json(json(g));
  }

  function route(req: Request, url: URL, body: string, caller: string | undefined): Response {
    if (caller === undefined) {
      return error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.");
    }
    const p = decodeURIComponent(url.pathname.replace(/^\/pam\/v1\//, ""));
    let m: RegExpExecArray | null;
    if ((m = new RegExp(`^(${ENT})/grants$`).exec(p)) && req.method === "POST") {
      const ent = entitlements.get(m[1]!);
      if (!ent) return error(403, "PERMISSION_DENIED", `Permission denied on ${m[1]}`);
      return create(ent, url, body, caller);
    }
    if ((m = new RegExp(`^(${ENT})/grants:search$`).exec(p)) && req.method === "GET") {
      if (url.searchParams.get("callerRelationship") !== "HAD_CREATED") {
        return error(400, "INVALID_ARGUMENT", "callerRelationship is required");
      }
      const all = [...grants.values()].filter((g) =>
        g.entitlement === m![1] && g.requester === caller
      ).map((g) => json(tick(g)));
      // Pages like Google's: pageSize (default 10 here, to exercise paging), opaque pageToken.
      const size = Math.min(Number(url.searchParams.get("pageSize") ?? 10) || 10, 100);
      const from = Number(url.searchParams.get("pageToken") ?? 0) || 0;
      const list = all.slice(from, from + size);
      const next = from + size < all.length ? { nextPageToken: String(from + size) } : {};
      return Response.json(list.length ? { grants: list, ...next } : {});
    }
    if ((m = new RegExp(`^(${ENT}/grants/[^/:]+):withdraw$`).exec(p)) && req.method === "POST") {
      const g = grants.get(m[1]!);
      if (!g || g.requester !== caller) return error(404, "NOT_FOUND", `${m[1]} not found`);
      if (TERMINAL.has(tick(g).state)) {
        return error(400, "FAILED_PRECONDITION", `grant is ${g.state}; it cannot be withdrawn`);
      }
      g.state = "WITHDRAWING";
      const op = `${g.entitlement.replace(/\/entitlements\/.*/, "")}/operations/op-${++counter}`;
      operations.set(op, g.name);
      return Response.json({ name: op, done: false, metadata: { verb: "withdraw" } });
    }
    if ((m = new RegExp(`^(${ENT}/grants/[^/:]+)$`).exec(p)) && req.method === "GET") {
      const g = grants.get(m[1]!);
      if (!g || g.requester !== caller) return error(404, "NOT_FOUND", `${m[1]} not found`);
      return Response.json(json(tick(g)));
    }
    if ((m = new RegExp(`^(${ENT})$`).exec(p)) && req.method === "GET") {
      const ent = entitlements.get(m[1]!);
      if (!ent) return error(403, "PERMISSION_DENIED", `Permission denied on ${m[1]}`);
      return Response.json({
        name: ent.name,
        maxRequestDuration: `${ent.maxSeconds}s`,
        privilegedAccess: {
          gcpIamAccess: { roleBindings: ent.roles.map((role) => ({ role })) },
        },
        state: "AVAILABLE",
      });
    }
    const op = operations.get(p);
    if (op !== undefined && req.method === "GET") {
      // The withdrawal finishes on the first look after it started.
      const g = grants.get(op)!;
      if (g.state === "WITHDRAWING") g.state = "WITHDRAWN";
      return Response.json({ name: p, done: true, response: json(g) });
    }
    return error(404, "NOT_FOUND", `fake pam: no route for ${req.method} ${url.pathname}`);
  }

  function must(name: string): FakeGrant {
    const g = grants.get(name);
    if (!g) throw new Error(`fake pam: no grant ${name}`);
    return g;
  }

  return {
    route,
    grants: () => [...grants.values()].map(tick),
    approve(name) {
      const g = must(name);
      if (g.state !== "APPROVAL_AWAITED") throw new Error(`fake pam: ${name} is ${g.state}`);
      activate(g);
    },
    deny(name) {
      const g = must(name);
      if (g.state !== "APPROVAL_AWAITED") throw new Error(`fake pam: ${name} is ${g.state}`);
      g.state = "DENIED";
    },
    setState(name, state) {
      const g = must(name);
      g.state = state;
      if (state === "ACTIVE" && g.activatedAt === undefined) g.activatedAt = Date.now();
    },
  };
}
