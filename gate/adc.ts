/**
 * Turns the engineer's Application Default Credentials file into access
 * tokens. The credential is built from the file alone — no library probes
 * the machine (gcloud, /sys, a metadata server) for credentials — and every
 * token request goes to the configured `[endpoints]`.
 *
 * Supported: authorized_user, service_account (key), impersonated_service_account,
 * external_account (workload identity federation, file-, URL- or executable-sourced).
 */
import type { CoreEndpoints } from "../shared/config.ts";
import { GateError, isGateError } from "../shared/errors.ts";
import {
  executableSubjectToken,
  parseExecutableSource,
  type RunProgram,
  runProgram,
} from "./adc_executable.ts";
import { signAssertion } from "./adc_jwt.ts";
import type { GoogleApi, MintedToken } from "./google_api.ts";
import { createSingleFlight } from "./single_flight.ts";
import { needsRefresh } from "./tokens.ts";

export type AdcType =
  | "authorized_user"
  | "service_account"
  | "impersonated_service_account"
  | "external_account";

/** The engineer's own credential: the source of every other token. */
export interface SourceCredential {
  readonly type: AdcType;
  /** The ADC file it was read from. */
  readonly path: string;
  /** The principal's email when the file names it (service accounts). */
  readonly email: string | undefined;
  /** A valid access token for the ADC principal (cached until due for refresh). */
  getToken(): Promise<MintedToken>;
}

/** Reads a file; undefined when missing. */
export type ReadFile = (path: string) => string | undefined;

/** Dependencies of {@linkcode parseSourceCredential}. */
export interface AdcDeps {
  api: GoogleApi;
  endpoints: CoreEndpoints;
  readFile: ReadFile;
  hostname: () => string;
  now?: () => number;
  /** GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1: executable-sourced credentials may run. */
  allowExecutables?: boolean;
  /** Runs a credential source program (default: the real one). */
  runProgram?: RunProgram;
}

const CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform";
const USERINFO_EMAIL = "https://www.googleapis.com/auth/userinfo.email";

/** The one-line fix for expired/missing ADC. */
export function reloginHint(hostname: string): string {
  return `run on the host ${hostname}: gcloud auth application-default login`;
}

/** The `credentials_expired` error for `path`, naming the host and the command. */
export function expiredError(path: string, hostname: string, detail: string): GateError {
  return new GateError(
    "credentials_expired",
    `the Application Default Credentials in ${path} ${detail}; ${reloginHint(hostname)}`,
  );
}

function str(json: Record<string, unknown>, key: string): string | undefined {
  const v = json[key];
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** `…/serviceAccounts/<email>:generateAccessToken` → email. */
export function impersonationTarget(url: string): string | undefined {
  const m = /\/serviceAccounts\/([^/:]+):generateAccessToken$/.exec(url);
  return m ? decodeURIComponent(m[1]!) : undefined;
}

type Fetcher = () => Promise<MintedToken>;

/** A fetcher for a raw ADC JSON object (also used for impersonation sources). */
function fetcherFor(
  json: Record<string, unknown>,
  path: string,
  deps: AdcDeps,
  depth: number,
): { type: AdcType; email: string | undefined; fetch: Fetcher } {
  const now = deps.now ?? Date.now;
  const bad = (what: string): never => {
    throw expiredError(path, deps.hostname(), `are incomplete (${what})`);
  };
  switch (json.type) {
    case "authorized_user": {
      const form = {
        grant_type: "refresh_token",
        client_id: str(json, "client_id") ?? bad("no client_id"),
        client_secret: str(json, "client_secret") ?? bad("no client_secret"),
        refresh_token: str(json, "refresh_token") ?? bad("no refresh_token"),
      };
      return {
        type: "authorized_user",
        email: undefined,
        fetch: () => deps.api.oauthToken(`${deps.endpoints.oauth2}/token`, form),
      };
    }
    case "service_account": {
      const email = str(json, "client_email") ?? bad("no client_email");
      const key = str(json, "private_key") ?? bad("no private_key");
      const keyId = str(json, "private_key_id");
      const tokenUrl = `${deps.endpoints.oauth2}/token`;
      // Google checks `aud` against its token URI; the file names it.
      const aud = str(json, "token_uri") ?? tokenUrl;
      return {
        type: "service_account",
        email,
        fetch: async () => {
          const iat = Math.floor(now() / 1000);
          const assertion = await signAssertion(
            { iss: email, scope: `${CLOUD_PLATFORM} ${USERINFO_EMAIL}`, aud, iat, exp: iat + 3600 },
            key,
            keyId,
          );
          return await deps.api.oauthToken(tokenUrl, {
            grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
            assertion,
          });
        },
      };
    }
    case "impersonated_service_account": {
      const url = str(json, "service_account_impersonation_url") ??
        bad("no service_account_impersonation_url");
      const target = impersonationTarget(url) ??
        bad("unrecognised service_account_impersonation_url");
      const src = json.source_credentials;
      if (depth > 0 || src === null || typeof src !== "object" || Array.isArray(src)) {
        return bad("source_credentials must be an authorized_user or service_account object");
      }
      const source = fetcherFor(src as Record<string, unknown>, path, deps, depth + 1);
      return {
        type: "impersonated_service_account",
        email: target,
        fetch: async () => {
          const s = await source.fetch();
          return await deps.api.generateAccessToken(s.token, target, [CLOUD_PLATFORM], 3600);
        },
      };
    }
    case "external_account":
      return externalAccount(json, path, deps, bad);
    default:
      throw expiredError(
        path,
        deps.hostname(),
        `have type ${
          JSON.stringify(String(json.type).slice(0, 40))
        }, which the gate does not support (supported: authorized_user, service_account, impersonated_service_account, external_account)`,
      );
  }
}

/** The string-valued entries of a JSON object (credential_source headers); others are dropped. */
function stringEntries(obj: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (obj && typeof obj === "object") {
    for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
      if (typeof v === "string") out[k] = v;
    }
  }
  return out;
}

/** A non-empty string field of a JSON document, or undefined (also when it is not JSON). */
function jsonField(raw: string, field: string): string | undefined {
  try {
    const v = JSON.parse(raw)[field];
    if (typeof v === "string" && v !== "") return v;
  } catch { /* not JSON: the caller reports it */ }
  return undefined;
}

function externalAccount(
  json: Record<string, unknown>,
  path: string,
  deps: AdcDeps,
  bad: (what: string) => never,
): { type: AdcType; email: string | undefined; fetch: Fetcher } {
  const audience = str(json, "audience") ?? bad("no audience");
  const subjectType = str(json, "subject_token_type") ?? bad("no subject_token_type");
  const impersonation = str(json, "service_account_impersonation_url");
  const target = impersonation ? impersonationTarget(impersonation) : undefined;
  if (impersonation && !target) bad("unrecognised service_account_impersonation_url");
  const cs = json.credential_source as Record<string, unknown> | undefined;
  if (!cs || typeof cs !== "object") return bad("no credential_source");
  const file = str(cs, "file");
  const url = str(cs, "url");
  const exe = cs.executable;
  const executable = !file && !url && exe && typeof exe === "object" && !Array.isArray(exe)
    ? parseExecutableSource(exe as Record<string, unknown>, bad)
    : undefined;
  if (!file && !url && !executable) {
    return bad("credential_source needs a file, a url or an executable");
  }
  const format = (cs.format ?? {}) as Record<string, unknown>;
  const fieldName = str(format, "subject_token_field_name");
  const headers = stringEntries(cs.headers);
  const subjectToken = async (): Promise<string> => {
    if (executable) {
      return await executableSubjectToken(executable, {
        audience,
        subjectTokenType: subjectType,
        impersonatedEmail: target,
      }, {
        allowExecutables: deps.allowExecutables === true,
        run: deps.runProgram ?? runProgram,
        readFile: deps.readFile,
        now: deps.now ?? Date.now,
      });
    }
    let raw: string | undefined;
    if (file) {
      raw = deps.readFile(file);
      if (raw === undefined) {
        throw expiredError(
          path,
          deps.hostname(),
          `name a subject token file ${file} that is missing`,
        );
      }
    } else {
      raw = await deps.api.getText(url!, headers);
    }
    if (format.type !== "json") return raw.trim();
    const v = jsonField(raw, fieldName ?? "");
    if (v !== undefined) return v;
    throw expiredError(
      path,
      deps.hostname(),
      `name a subject token source without the JSON field ${JSON.stringify(fieldName ?? "")}`,
    );
  };
  return {
    type: "external_account",
    email: target,
    fetch: async () => {
      const sts = await deps.api.stsExchange(`${deps.endpoints.sts}/v1/token`, {
        grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
        audience,
        scope: CLOUD_PLATFORM,
        requested_token_type: "urn:ietf:params:oauth:token-type:access_token",
        subject_token: await subjectToken(),
        subject_token_type: subjectType,
      });
      if (!target) return sts;
      return await deps.api.generateAccessToken(sts.token, target, [CLOUD_PLATFORM], 3600);
    },
  };
}

/**
 * Builds the credential for the ADC file at `path` with content `text`.
 * Tokens are cached until due for refresh; concurrent refreshes share one call.
 */
export function parseSourceCredential(
  path: string,
  text: string,
  deps: AdcDeps,
): SourceCredential {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw expiredError(path, deps.hostname(), "are not valid JSON");
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw expiredError(path, deps.hostname(), "are not a JSON object");
  }
  const f = fetcherFor(json as Record<string, unknown>, path, deps, 0);
  const now = deps.now ?? Date.now;
  const flight = createSingleFlight<MintedToken & { issuedAt: number }>();
  let cached: (MintedToken & { issuedAt: number }) | undefined;
  return {
    type: f.type,
    path,
    email: f.email,
    async getToken() {
      if (cached && !needsRefresh(cached, now())) return cached;
      cached = await flight.run("adc", async () => {
        const issuedAt = now();
        try {
          return { ...(await f.fetch()), issuedAt };
        } catch (err) {
          if (isGateError(err, "credentials_expired") && !err.message.includes(path)) {
            throw expiredError(path, deps.hostname(), `were refused (${err.message})`);
          }
          throw err;
        }
      });
      return cached;
    },
  };
}
