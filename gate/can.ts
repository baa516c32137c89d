/**
 * `gcp-gate can <permission>… --resource <full resource name> [--as dev|prod|me] [--json]`:
 * asks Google's testIamPermissions which of the permissions the dev account,
 * the prod account or the engineer holds on one resource.
 *
 * No approval is asked for `--as prod`: testIamPermissions grants nothing
 * and returns only which of the named permissions are held. The prod token
 * minted for the question lives 10 minutes, is used for this one call and is
 * never printed (the engineer could mint it on the host with gcloud anyway).
 */
import { printOut } from "../shared/cli.ts";
import type { Invocation } from "../shared/config.ts";
import { EXIT, GateError } from "../shared/errors.ts";
import type { Logger } from "../shared/log.ts";
import {
  createInspector,
  heldPermissions,
  IDENTITIES,
  type Identity,
  type Inspector,
} from "./inspect.ts";
import { checkPermissions, parseResource, testPermissionsRequest } from "./resources.ts";

/** The answer to one `can` question. */
export interface CanAnswer {
  readonly as: Identity;
  readonly principal: string | null;
  readonly resource: string;
  readonly held: string[];
  readonly missing: string[];
  readonly note?: string;
}

/** Dependencies of {@linkcode canCommand} (real ones by default). */
export interface CanDeps {
  inspector?: Inspector;
  out?: (text: string) => void;
}

function identity(value: unknown): Identity {
  if (value === undefined) return "dev";
  if (typeof value === "string" && (IDENTITIES as readonly string[]).includes(value)) {
    return value as Identity;
  }
  throw new GateError("usage", `--as must be one of ${IDENTITIES.join(", ")}`);
}

/** Asks Google; pure apart from the inspector's calls. */
export async function askCan(
  inspector: Inspector,
  question: { as: Identity; resource: string; permissions: readonly string[] },
  endpoints: Invocation["config"]["endpoints"],
): Promise<CanAnswer> {
  const who = await inspector.tokenAs(question.as);
  const req = testPermissionsRequest(question.resource, question.permissions, endpoints);
  const headers = new Headers(req.init.headers);
  headers.set("authorization", `Bearer ${who.token}`);
  const answer = await inspector.api.json(
    `Cannot test permissions on ${question.resource} as ${question.as}`,
    req.url,
    { ...req.init, headers },
  );
  const held = heldPermissions(answer);
  return {
    as: question.as,
    principal: who.email ?? null,
    resource: question.resource,
    held: question.permissions.filter((p) => held.has(p)),
    missing: question.permissions.filter((p) => !held.has(p)),
    ...(who.note ? { note: who.note } : {}),
  };
}

/** Human-readable answer. */
export function formatCan(a: CanAnswer): string {
  const lines = [`as ${a.as} (${a.principal ?? "your ADC principal"}) on ${a.resource}:`];
  for (const p of a.held) lines.push(`  yes  ${p}`);
  for (const p of a.missing) lines.push(`  no   ${p}`);
  if (a.note) lines.push(`note: ${a.note}`);
  return lines.join("\n");
}

/** The `can` subcommand: exit 0 when every permission is held, 1 when any is not. */
export async function canCommand(
  inv: Invocation,
  args: readonly string[],
  _log: Logger,
  deps: CanDeps = {},
): Promise<number> {
  const resource = inv.extras.resource;
  if (typeof resource !== "string") {
    throw new GateError(
      "usage",
      "can needs --resource <full resource name>, e.g. --resource //storage.googleapis.com/projects/_/buckets/my-bucket",
    );
  }
  const permissions = checkPermissions(args);
  parseResource(resource); // a usage error before any credential is touched
  const as = identity(inv.extras.as);
  const inspector = deps.inspector ?? createInspector(inv.config);
  const answer = await askCan(inspector, { as, resource, permissions }, inv.config.endpoints);
  const out = deps.out ?? printOut;
  out(inv.extras.json === true ? JSON.stringify(answer) : formatCan(answer));
  return answer.missing.length === 0 ? EXIT.OK : EXIT.FAILURE;
}
