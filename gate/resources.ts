/**
 * Full resource names (`//storage.googleapis.com/projects/_/buckets/b`) →
 * the testIamPermissions call that asks Google about them. Pure: the
 * launcher's resolver uses the same parser to grant `gcp-gate can` exactly
 * the one API host its `--resource` needs.
 */
import type { Endpoints } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";

/** The resource kinds `gcp-gate can` asks about. */
export type ResourceKind =
  | "project"
  | "bucket"
  | "service_account"
  | "topic"
  | "subscription"
  | "bigquery_table";

/** One parsed resource and how to ask about it. */
export interface ResourceTarget {
  readonly kind: ResourceKind;
  /** The full resource name as given. */
  readonly name: string;
  /** The `[endpoints]` key of the API that answers. */
  readonly endpoint: keyof Endpoints;
}

/** An HTTP request (without the bearer token). */
export interface IamRequest {
  readonly url: string;
  readonly init: RequestInit;
}

interface KindSpec {
  readonly kind: ResourceKind;
  readonly service: string;
  /** Path segments after the service; `*` is one id. */
  readonly shape: readonly string[];
  readonly endpoint: keyof Endpoints;
  readonly example: string;
  /** Path of the testIamPermissions call (ids are URL-encoded already). */
  readonly path: (ids: readonly string[]) => string;
}

const KINDS: readonly KindSpec[] = [
  {
    kind: "project",
    service: "cloudresourcemanager.googleapis.com",
    shape: ["projects", "*"],
    endpoint: "cloudresourcemanager",
    example: "//cloudresourcemanager.googleapis.com/projects/PROJECT_ID",
    path: ([p]) => `/v3/projects/${p}:testIamPermissions`,
  },
  {
    kind: "bucket",
    service: "storage.googleapis.com",
    shape: ["projects", "_", "buckets", "*"],
    endpoint: "storage",
    example: "//storage.googleapis.com/projects/_/buckets/BUCKET",
    // Cloud Storage's JSON API: GET with the permissions in the query.
    path: ([b]) => `/storage/v1/b/${b}/iam/testPermissions`,
  },
  {
    kind: "service_account",
    service: "iam.googleapis.com",
    shape: ["projects", "*", "serviceAccounts", "*"],
    endpoint: "iam",
    example: "//iam.googleapis.com/projects/PROJECT_ID/serviceAccounts/EMAIL",
    path: ([p, sa]) => `/v1/projects/${p}/serviceAccounts/${sa}:testIamPermissions`,
  },
  {
    kind: "topic",
    service: "pubsub.googleapis.com",
    shape: ["projects", "*", "topics", "*"],
    endpoint: "pubsub",
    example: "//pubsub.googleapis.com/projects/PROJECT_ID/topics/TOPIC",
    path: ([p, t]) => `/v1/projects/${p}/topics/${t}:testIamPermissions`,
  },
  {
    kind: "subscription",
    service: "pubsub.googleapis.com",
    shape: ["projects", "*", "subscriptions", "*"],
    endpoint: "pubsub",
    example: "//pubsub.googleapis.com/projects/PROJECT_ID/subscriptions/SUBSCRIPTION",
    path: ([p, s]) => `/v1/projects/${p}/subscriptions/${s}:testIamPermissions`,
  },
  {
    kind: "bigquery_table",
    service: "bigquery.googleapis.com",
    shape: ["projects", "*", "datasets", "*", "tables", "*"],
    endpoint: "bigquery",
    example: "//bigquery.googleapis.com/projects/PROJECT_ID/datasets/DATASET/tables/TABLE",
    path: ([p, d, t]) => `/bigquery/v2/projects/${p}/datasets/${d}/tables/${t}:testIamPermissions`,
  },
];

/** The supported forms, for error messages and docs. */
export const SUPPORTED_RESOURCES: readonly string[] = KINDS.map((k) => k.example);

const MAX_NAME = 1024;
/** One id: no separators, no URL syntax, no whitespace or control characters. */
const ID = /^[^/\s?#%\\\p{Cc}]{1,255}$/u;

function unsupported(name: string, extra = ""): GateError {
  return new GateError(
    "usage",
    `unsupported resource ${JSON.stringify(name.slice(0, 200))}${extra}; supported: ${
      SUPPORTED_RESOURCES.join(", ")
    }`,
  );
}

function matchIds(spec: KindSpec, segments: readonly string[]): string[] | undefined {
  if (segments.length !== spec.shape.length) return undefined;
  const ids: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const want = spec.shape[i]!;
    const got = segments[i]!;
    if (want === "*") {
      // "." and ".." would be resolved away by URL parsing: another resource.
      if (!ID.test(got) || got === "." || got === "..") return undefined;
      ids.push(got);
    } else if (got !== want) {
      return undefined;
    }
  }
  return ids;
}

function parse(name: string): { spec: KindSpec; ids: string[] } {
  if (name.length > MAX_NAME || !name.startsWith("//")) {
    throw unsupported(name, " (a full resource name starts with //SERVICE/)");
  }
  const [service, ...segments] = name.slice(2).split("/");
  if (service === "bigquery.googleapis.com" && segments.length === 4) {
    // Google's BigQuery API has testIamPermissions for tables and routines,
    // but none for datasets: say so instead of guessing.
    throw unsupported(
      name,
      " (BigQuery has no testIamPermissions for datasets; ask about a table in it, or about the project)",
    );
  }
  for (const spec of KINDS) {
    if (spec.service !== service) continue;
    const ids = matchIds(spec, segments);
    if (ids) return { spec, ids };
  }
  throw unsupported(name);
}

/** Parses a full resource name; GateError `usage` naming the supported forms otherwise. */
export function parseResource(name: string): ResourceTarget {
  const { spec } = parse(name);
  return { kind: spec.kind, name, endpoint: spec.endpoint };
}

/** The testIamPermissions request for `name` and `permissions`, against `endpoints`. */
export function testPermissionsRequest(
  name: string,
  permissions: readonly string[],
  endpoints: Endpoints,
): IamRequest {
  const { spec, ids } = parse(name);
  const base = endpoints[spec.endpoint];
  const path = spec.path(ids.map(encodeURIComponent));
  if (spec.kind === "bucket") {
    const q = new URLSearchParams(permissions.map((p) => ["permissions", p]));
    return { url: `${base}${path}?${q}`, init: { method: "GET" } };
  }
  return {
    url: `${base}${path}`,
    init: {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ permissions }),
    },
  };
}

/** Longest permission list one call may carry (Google's own limit is 100). */
export const MAX_PERMISSIONS = 100;
const PERMISSION = /^[a-z][a-zA-Z0-9]*(\.[a-zA-Z0-9_]+){2,3}$/;

/** Validates permission names (no wildcards: testIamPermissions refuses them). */
export function checkPermissions(permissions: readonly string[]): string[] {
  if (permissions.length === 0) {
    throw new GateError("usage", "name at least one permission, e.g. storage.objects.get");
  }
  if (permissions.length > MAX_PERMISSIONS) {
    throw new GateError("usage", `at most ${MAX_PERMISSIONS} permissions per call`);
  }
  for (const p of permissions) {
    if (p.length > 128 || !PERMISSION.test(p)) {
      throw new GateError(
        "usage",
        `${
          JSON.stringify(p.slice(0, 130))
        } is not a permission name (service.resource.verb, e.g. storage.objects.get; no wildcards)`,
      );
    }
  }
  return [...new Set(permissions)];
}
