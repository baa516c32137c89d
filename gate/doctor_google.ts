/**
 * `gcp-gate doctor`, the checks that talk to Google: the ADC really refreshes,
 * whose it is, each profile's dev and prod accounts can be impersonated, and
 * the clock agrees with Google's. Every token minted here is dropped
 * unprinted: the report names kinds and lifetimes only.
 *
 * The work is bounded however many profiles there are: each distinct account
 * is probed once (profiles sharing an account share the answer), and, with
 * profiles, once Google gives no verdict on one probe the remaining accounts
 * are not probed: a silent Google costs one call's deadline, not one per
 * account (doctor_profile.ts).
 */
import type { Config } from "../shared/config.ts";
import { type CheckResult, fail, pass, shellArg, warn } from "../shared/doctor_report.ts";
import { isGateError } from "../shared/errors.ts";
import type { CredentialProvider } from "./credentials.ts";
import { eachProfile, keyLocation, type Memo, once } from "./doctor_profile.ts";
import type { FetchFn, GoogleApi } from "./google_api.ts";
import { type Entitlement, type PamClient, resolveEntitlement } from "./pam/client.ts";
import type { Profile } from "./profiles.ts";

/** Collaborators of the Google checks. */
export interface GoogleCheckDeps {
  readonly api: GoogleApi;
  readonly credentials: CredentialProvider;
  /** For the clock check only (no credential is sent). */
  readonly fetch: FetchFn;
  readonly now: () => number;
  /** Privileged Access Manager, for the entitlement check (when `pam_entitlement` is set). */
  readonly pam: PamClient;
}

/** The settings of one profile the Google checks read. */
export type DoctorProfile = Pick<
  Profile,
  | "name"
  | "named"
  | "service_account"
  | "prod_service_account"
  | "pam_entitlement"
  | "pam_location"
  | "project_id"
>;

/** What later checks learn from earlier ones. */
interface AdcState {
  token?: string;
  type?: string;
  email?: string;
  /** Impersonation probes by service account (the minted token's expiry only). */
  readonly probes: Memo<number>;
  /** PAM entitlements by full name. */
  readonly entitlements: Memo<Entitlement>;
}

const CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform";
/** Lifetime of the throw-away token that proves impersonation works. */
const PROBE_TOKEN_SECONDS = 600;
const SKEW_WARN_SECONDS = 60;
/** Google refuses signed JWT assertions this far off, and clients misjudge token expiry. */
const SKEW_FAIL_SECONDS = 300;

function minutes(ms: number): string {
  return `${Math.max(0, Math.round(ms / 60_000))} min`;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0] ?? "";
}

/** The gcloud line that lets the ADC principal mint tokens for `sa`. */
export function grantTokenCreator(sa: string, state: { type?: string; email?: string }): string {
  const kind = state.type === "authorized_user" || state.type === undefined
    ? "user"
    : "serviceAccount";
  const member = state.email ? shellArg(`${kind}:${state.email}`) : "user:<your-email>";
  return `gcloud iam service-accounts add-iam-policy-binding ${
    shellArg(sa)
  } --member=${member} --role=roles/iam.serviceAccountTokenCreator`;
}

/** What each Google check gets: config, collaborators, and what earlier checks learnt. */
interface Ctx {
  readonly config: Config;
  readonly deps: GoogleCheckDeps;
  readonly state: AdcState;
}

/** doctor runs on the host, so the fix is the plain command (no "run on the host" prefix). */
const RELOGIN = "gcloud auth application-default login";

function checkAdcFile({ deps, state }: Ctx): CheckResult {
  try {
    const cred = deps.credentials.current();
    state.type = cred.type;
    if (cred.email) state.email = cred.email;
    return pass("adc", `${cred.path} (${cred.type})`);
  } catch (err) {
    return fail("adc", firstLine(err), RELOGIN);
  }
}

/** A real refresh at the token endpoint: a file that parses may still be revoked. */
async function checkRefresh({ config, deps, state }: Ctx): Promise<CheckResult> {
  const id = "adc-refresh";
  if (!state.type) return fail(id, "not checked: no usable ADC file", RELOGIN);
  try {
    const t = await deps.credentials.token();
    state.token = t.token;
    return pass(
      id,
      `refreshed at ${new URL(config.endpoints.oauth2).host}: an access token valid ${
        minutes(t.expiresAt - deps.now())
      }`,
    );
  } catch (err) {
    if (isGateError(err, "credentials_expired")) return fail(id, firstLine(err), RELOGIN);
    return fail(
      id,
      firstLine(err),
      `check the network and endpoints.oauth2 (${config.endpoints.oauth2})`,
    );
  }
}

async function checkEngineer({ deps, state }: Ctx): Promise<CheckResult> {
  if (state.email) return pass("engineer", state.email);
  if (!state.token) return fail("engineer", "not checked: the ADC did not refresh", RELOGIN);
  try {
    state.email = await deps.api.tokenEmail(state.token);
    return pass("engineer", state.email);
  } catch (err) {
    return warn(
      "engineer",
      `unknown (${firstLine(err)}); metadata clients asking for the email get an error`,
      RELOGIN,
    );
  }
}

const RETRY_DOCTOR = "check the network and [endpoints], then re-run gcp-gate doctor";

/** Mints a short token for `sa` and drops it: the only proof that impersonation works. */
async function checkImpersonation(
  { config, deps, state }: Ctx,
  id: "dev-account" | "prod-account",
  on: { sa: string; profile: DoctorProfile },
): Promise<CheckResult> {
  const { sa, profile } = on;
  const role = id === "dev-account" ? "dev account" : "prod account";
  const token = state.token;
  if (!token) return fail(id, `${role} ${sa}: not checked, the ADC did not refresh`, RELOGIN);
  const answer = await once(state.probes, sa, async () => {
    // Only the expiry is kept: the token itself is dropped here.
    const t = await deps.api.generateAccessToken(token, sa, [CLOUD_PLATFORM], PROBE_TOKEN_SECONDS);
    return t.expiresAt;
  });
  if (answer === undefined) {
    return fail(
      id,
      `${role} ${sa}: not checked, Google gave no answer on ${state.probes.unanswered}, so no more accounts were probed`,
      RETRY_DOCTOR,
    );
  }
  if ("value" in answer) {
    return pass(
      id,
      `${role} ${sa} can be impersonated (a ${
        minutes(answer.value - deps.now())
      } token was minted and discarded)`,
    );
  }
  const err = answer.error;
  const status = isGateError(err) ? err.status : 0;
  if (status === 403) {
    return fail(
      id,
      `${state.email ?? "your ADC principal"} may not mint tokens for ${role} ${sa}: ${
        firstLine(err)
      }`,
      grantTokenCreator(sa, state),
    );
  }
  if (status === 404) {
    const key = id === "dev-account" ? "service_account" : "prod_service_account";
    return fail(
      id,
      `${role} ${sa} does not exist: ${firstLine(err)}`,
      `correct ${key} in ${keyLocation(config, profile, key)}`,
    );
  }
  return fail(id, `${role} ${sa}: ${firstLine(err)}`, RETRY_DOCTOR);
}

function checkDevAccount(ctx: Ctx, profile: DoctorProfile): Promise<CheckResult> {
  const sa = profile.service_account;
  if (sa) return checkImpersonation(ctx, "dev-account", { sa, profile });
  const line = 'service_account = "dev@<project>.iam.gserviceaccount.com"';
  const file = ctx.config.config_path
    ? shellArg(ctx.config.config_path)
    : "~/.config/gcp-gate/config.toml";
  return Promise.resolve(fail(
    "dev-account",
    "no service_account configured: every dev token is refused",
    // Appending to the file would land in its last table: a profile's line goes in its own.
    profile.named
      ? `add ${line} to [profiles.${profile.name}] in ${file}`
      : `echo '${line}' >> ${file}`,
  ));
}

function checkProdAccount(ctx: Ctx, profile: DoctorProfile): Promise<CheckResult> {
  const sa = profile.prod_service_account;
  if (sa) return checkImpersonation(ctx, "prod-account", { sa, profile });
  return Promise.resolve(pass(
    "prod-account",
    "no prod_service_account: approved prod sessions use your own ADC's tokens",
  ));
}

/** The PAM entitlement prod sessions are granted through: visible to you, and what it grants. */
async function checkPamEntitlement(
  { deps, state }: Ctx,
  profile: DoctorProfile,
): Promise<CheckResult> {
  if (profile.pam_entitlement === undefined) {
    return pass("pam-entitlement", "no pam_entitlement: prod sessions are not PAM grants");
  }
  let name: string;
  try {
    name = resolveEntitlement(profile.pam_entitlement, profile.project_id, profile.pam_location);
  } catch (err) {
    return fail(
      "pam-entitlement",
      firstLine(err),
      "set pam_entitlement to a full entitlement name",
    );
  }
  const token = state.token;
  if (!token) {
    return warn("pam-entitlement", `${name}: not checked (no working ADC)`, RELOGIN);
  }
  const [scope, parent, , location, , id] = name.split("/");
  const answer = await once(state.entitlements, name, () => deps.pam.getEntitlement(token, name));
  if (answer === undefined) {
    return fail(
      "pam-entitlement",
      `${name}: not checked, Privileged Access Manager gave no answer on ${state.entitlements.unanswered}, so no more entitlements were read`,
      RETRY_DOCTOR,
    );
  }
  if ("value" in answer) {
    const e = answer.value;
    const roles = e.roles.length > 0 ? e.roles.join(", ") : "roles not shown";
    const max = e.maxSeconds === undefined ? "" : `, at most ${minutes(e.maxSeconds * 1000)}`;
    return pass("pam-entitlement", `${name} is visible: ${roles}${max}`);
  }
  return fail(
    "pam-entitlement",
    `${name} cannot be read with your ADC: ${firstLine(answer.error)}`,
    `gcloud beta pam entitlements describe ${shellArg(id ?? "")} --location=${
      shellArg(location ?? "global")
    } --${scope === "projects" ? "project" : scope === "folders" ? "folder" : "organization"}=${
      shellArg(parent ?? "")
    }   # then ask its admin to make you a requester`,
  );
}

/**
 * The Google checks, in report order, sharing what they learn. The account
 * checks run for each of `profiles` (a config without profiles: its one
 * implicit profile, reported as before).
 */
export function googleChecks(
  config: Config,
  deps: GoogleCheckDeps,
  profiles: readonly DoctorProfile[],
): { id: string; run: () => Promise<CheckResult | CheckResult[]> }[] {
  const bounded = profiles.some((p) => p.named);
  const ctx: Ctx = {
    config,
    deps,
    state: {
      probes: { answers: new Map(), stopOnSilence: bounded },
      entitlements: { answers: new Map(), stopOnSilence: bounded },
    },
  };
  return [
    { id: "adc", run: () => Promise.resolve(checkAdcFile(ctx)) },
    { id: "adc-refresh", run: () => checkRefresh(ctx) },
    { id: "engineer", run: () => checkEngineer(ctx) },
    { id: "dev-account", run: () => eachProfile(profiles, (p) => checkDevAccount(ctx, p)) },
    { id: "prod-account", run: () => eachProfile(profiles, (p) => checkProdAccount(ctx, p)) },
    {
      id: "pam-entitlement",
      run: () => eachProfile(profiles, (p) => checkPamEntitlement(ctx, p)),
    },
    { id: "clock", run: () => checkClock(config, deps) },
  ];
}

/** Compares the local clock with the `Date` header of Google's OAuth2 endpoint. */
async function checkClock(config: Config, deps: GoogleCheckDeps): Promise<CheckResult> {
  const url = `${config.endpoints.oauth2}/tokeninfo`;
  const fix = Deno.build.os === "darwin"
    ? "sudo sntp -sS time.apple.com"
    : "sudo timedatectl set-ntp true";
  let date: string | null;
  const t0 = deps.now();
  let t1: number;
  try {
    // No credential is sent: any answer (400 included) carries the Date header.
    const res = await deps.fetch(url, { method: "GET", signal: AbortSignal.timeout(5000) });
    t1 = deps.now();
    date = res.headers.get("date");
    await res.body?.cancel();
  } catch (err) {
    return warn(
      "clock",
      `cannot ask ${new URL(url).host} for the time: ${firstLine(err)}`,
      "check the network, then re-run gcp-gate doctor",
    );
  }
  const theirs = date === null ? NaN : Date.parse(date);
  if (!Number.isFinite(theirs)) {
    return warn(
      "clock",
      `${new URL(url).host} sent no usable Date header`,
      "re-run gcp-gate doctor",
    );
  }
  // The header has one-second resolution: compare with the middle of the round trip.
  const skew = Math.round((theirs - (t0 + t1) / 2) / 1000);
  const abs = Math.abs(skew);
  const msg = `local clock is ${abs} s ${skew > 0 ? "behind" : "ahead of"} Google's`;
  if (abs >= SKEW_FAIL_SECONDS) {
    return fail("clock", `${msg}: tokens look expired or not yet valid`, fix);
  }
  if (abs >= SKEW_WARN_SECONDS) return warn("clock", `${msg}: token expiry is misjudged`, fix);
  return pass("clock", abs <= 1 ? "in step with Google's (within 1 s)" : msg);
}
