/**
 * `gcp-gate accounts [--project P] [--json]`: the service accounts of a
 * project and, for each, whether the engineer may impersonate it (IAM
 * serviceAccounts.list, then testIamPermissions for
 * iam.serviceAccounts.getAccessToken, a bounded number at a time). The
 * configured dev and prod accounts are marked, and checked even when they
 * live in another project.
 */
import { printOut } from "../shared/cli.ts";
import type { Config, Invocation } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import type { Logger } from "../shared/log.ts";
import { sanitizeMessage } from "../shared/redact.ts";
import { createInspector, heldPermissions, type Inspector, mapLimit } from "./inspect.ts";
import { testPermissionsRequest } from "./resources.ts";

export const IMPERSONATE_PERMISSION = "iam.serviceAccounts.getAccessToken";
/** Permission tests in flight at once (IAM's per-user quota is generous; the host's is not). */
export const CONCURRENCY = 8;
/** Pages of 100 accounts read at most: a project with more is reported as truncated. */
export const MAX_PAGES = 20;

/** One row of the answer. */
export interface AccountRow {
  readonly email: string;
  readonly display_name: string | null;
  readonly disabled: boolean;
  /** null when the test itself failed (see error). */
  readonly can_impersonate: boolean | null;
  readonly configured_as: ("dev" | "prod")[];
  readonly listed: boolean;
  readonly error?: string;
}

/** The whole answer. */
export interface AccountsAnswer {
  readonly project: string;
  readonly principal: string | null;
  readonly accounts: AccountRow[];
  readonly truncated: boolean;
}

interface Listed {
  email: string;
  displayName: string | null;
  disabled: boolean;
}

async function listAccounts(
  inspector: Inspector,
  token: string,
  project: string,
  iamBase: string,
): Promise<{ accounts: Listed[]; truncated: boolean }> {
  const accounts: Listed[] = [];
  let pageToken = "";
  for (let page = 0; page < MAX_PAGES; page++) {
    const q = new URLSearchParams({ pageSize: "100" });
    if (pageToken) q.set("pageToken", pageToken);
    let j: { accounts?: unknown; nextPageToken?: unknown };
    try {
      j = await inspector.api.json(
        `Cannot list the service accounts of project "${project}"`,
        `${iamBase}/v1/projects/${encodeURIComponent(project)}/serviceAccounts?${q}`,
        { method: "GET", headers: { authorization: `Bearer ${token}` } },
      ) as typeof j;
    } catch (err) {
      if (err instanceof GateError && err.status === 403) {
        throw new GateError(
          "denied",
          `${
            err.message.replace(/\.$/, "")
          }. Listing needs iam.serviceAccounts.list on the project (e.g. roles/iam.serviceAccountViewer); to check one account you know, run: gcp-gate can ${IMPERSONATE_PERMISSION} --resource //iam.googleapis.com/projects/${project}/serviceAccounts/EMAIL --as me`,
        );
      }
      throw err;
    }
    for (const a of Array.isArray(j.accounts) ? j.accounts : []) {
      if (typeof a?.email !== "string") continue;
      accounts.push({
        email: a.email,
        displayName: typeof a.displayName === "string" && a.displayName !== ""
          ? sanitizeMessage(a.displayName, 100)
          : null,
        disabled: a.disabled === true,
      });
    }
    pageToken = typeof j.nextPageToken === "string" ? j.nextPageToken : "";
    if (!pageToken) return { accounts, truncated: false };
  }
  return { accounts, truncated: true };
}

/** Lists and tests; pure apart from the inspector's calls. */
export async function askAccounts(
  inspector: Inspector,
  project: string,
  config: Pick<Config, "endpoints" | "service_account" | "prod_service_account">,
): Promise<AccountsAnswer> {
  const me = await inspector.tokenAs("me");
  const listed = await listAccounts(inspector, me.token, project, config.endpoints.iam);
  const rows: Listed[] = [...listed.accounts];
  for (const sa of [config.service_account, config.prod_service_account]) {
    if (sa && !rows.some((r) => r.email === sa)) {
      rows.push({ email: sa, displayName: null, disabled: false });
    }
  }
  const tested = await mapLimit(rows, CONCURRENCY, async (r): Promise<AccountRow> => {
    const configured_as: ("dev" | "prod")[] = [];
    if (r.email === config.service_account) configured_as.push("dev");
    if (r.email === config.prod_service_account) configured_as.push("prod");
    const base = {
      email: r.email,
      display_name: r.displayName,
      disabled: r.disabled,
      configured_as,
      listed: listed.accounts.includes(r),
    };
    // `-` lets IAM find the account's project from its email (a configured
    // account may live elsewhere).
    const req = testPermissionsRequest(
      `//iam.googleapis.com/projects/-/serviceAccounts/${r.email}`,
      [IMPERSONATE_PERMISSION],
      config.endpoints,
    );
    try {
      const answer = await inspector.api.json(`Cannot test ${r.email}`, req.url, {
        ...req.init,
        headers: {
          ...req.init.headers as Record<string, string>,
          authorization: `Bearer ${me.token}`,
        },
      });
      return { ...base, can_impersonate: heldPermissions(answer).has(IMPERSONATE_PERMISSION) };
    } catch (err) {
      return {
        ...base,
        can_impersonate: null,
        error: sanitizeMessage((err as Error).message, 300),
      };
    }
  });
  return { project, principal: me.email ?? null, accounts: tested, truncated: listed.truncated };
}

/** Human-readable answer. */
export function formatAccounts(a: AccountsAnswer): string {
  const yes = a.accounts.filter((r) => r.can_impersonate === true).length;
  const width = Math.min(70, Math.max(0, ...a.accounts.map((r) => r.email.length)));
  const lines = [
    `project ${a.project}: ${a.accounts.filter((r) => r.listed).length} service accounts${
      a.truncated ? ` (first ${MAX_PAGES * 100} only)` : ""
    }; ${a.principal ?? "you"} can impersonate ${yes}`,
  ];
  for (const r of a.accounts) {
    const verdict = r.can_impersonate === null ? "unknown" : r.can_impersonate ? "yes" : "no";
    const tags = [
      ...r.configured_as.map((c) => `[${c}]`),
      ...(r.disabled ? ["(disabled)"] : []),
      ...(r.listed ? [] : ["(not in this project)"]),
      ...(r.display_name ? [r.display_name] : []),
      ...(r.error ? [`(${r.error})`] : []),
    ];
    lines.push(`  ${verdict.padEnd(7)}  ${r.email.padEnd(width)}  ${tags.join(" ")}`.trimEnd());
  }
  return lines.join("\n");
}

/** Dependencies of {@linkcode accountsCommand} (real ones by default). */
export interface AccountsDeps {
  inspector?: Inspector;
  out?: (text: string) => void;
}

/** The `accounts` subcommand. */
export async function accountsCommand(
  inv: Invocation,
  args: readonly string[],
  _log: Logger,
  deps: AccountsDeps = {},
): Promise<number> {
  if (args.length > 0) {
    throw new GateError("usage", `accounts takes no arguments (got ${JSON.stringify(args[0])})`);
  }
  const project = typeof inv.extras.project === "string"
    ? inv.extras.project
    : inv.config.project_id;
  if (!project) {
    throw new GateError("usage", "accounts needs --project P (or project_id in the config)");
  }
  const inspector = deps.inspector ?? createInspector(inv.config);
  const answer = await askAccounts(inspector, project, inv.config);
  (deps.out ?? printOut)(
    inv.extras.json === true ? JSON.stringify(answer) : formatAccounts(answer),
  );
  return 0;
}
