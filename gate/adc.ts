/**
 * Turns the engineer's Application Default Credentials into access tokens.
 * The client is built from the file ourselves: google-auth-library must never
 * probe the machine (gcloud, /sys, the metadata server) for credentials.
 */
import { UserRefreshClient } from "google-auth-library";
import type { Config } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import type { MintedToken } from "./google_api.ts";

/** The engineer's own credential: the source of every other token. */
export interface SourceCredential {
  readonly type: string;
  /** A valid access token for the ADC principal (cached by the implementation). */
  getToken(): Promise<MintedToken>;
}

/** Reads a file; undefined when missing. */
export type ReadFile = (path: string) => string | undefined;

/** Dependencies of {@linkcode loadSourceCredential}. */
export interface AdcDeps {
  readFile: ReadFile;
  hostname: () => string;
  now?: () => number;
}

/** The one-line fix for expired/missing ADC. */
export function reloginHint(hostname: string): string {
  return `run on the host ${hostname}: gcloud auth application-default login`;
}

function isInvalidGrant(err: unknown): boolean {
  const e = err as {
    response?: { data?: { error?: unknown; error_subtype?: unknown } };
    message?: unknown;
  };
  const code = e?.response?.data?.error;
  const sub = e?.response?.data?.error_subtype;
  return code === "invalid_grant" || code === "invalid_rapt" || sub === "invalid_rapt" ||
    (typeof e?.message === "string" && /invalid_grant|invalid_rapt|reauth/i.test(e.message));
}

/**
 * Loads the ADC file named by the config (or the first that exists of the
 * standard locations) and returns a credential for it.
 */
export function loadSourceCredential(config: Config, deps: AdcDeps): SourceCredential {
  let path: string | undefined;
  let text: string | undefined;
  for (const candidate of config.credentials_candidates) {
    text = deps.readFile(candidate);
    if (text !== undefined) {
      path = candidate;
      break;
    }
  }
  if (path === undefined || text === undefined) {
    throw new GateError(
      "credentials_missing",
      `no Application Default Credentials found (tried ${
        config.credentials_candidates.join(", ")
      }); ${reloginHint(deps.hostname())}`,
    );
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text);
  } catch {
    throw new GateError(
      "credentials_missing",
      `ADC file ${path} is not valid JSON; ${reloginHint(deps.hostname())}`,
    );
  }
  const now = deps.now ?? Date.now;
  switch (json.type) {
    case "authorized_user": {
      const client = new UserRefreshClient({
        clientId: String(json.client_id ?? ""),
        clientSecret: String(json.client_secret ?? ""),
        refreshToken: String(json.refresh_token ?? ""),
        endpoints: {
          oauth2TokenUrl: `${config.endpoints.oauth2}/token`,
          tokenInfoUrl: `${config.endpoints.oauth2}/tokeninfo`,
        },
      });
      return {
        type: "authorized_user",
        async getToken() {
          try {
            const res = await client.getAccessToken();
            if (!res.token) {
              throw new GateError("upstream", "the OAuth2 token endpoint returned no token");
            }
            const exp = client.credentials.expiry_date ?? now() + 3000_000;
            return { token: res.token, expiresAt: exp };
          } catch (err) {
            if (err instanceof GateError) throw err;
            if (isInvalidGrant(err)) {
              throw new GateError(
                "credentials_expired",
                `the Application Default Credentials in ${path} have expired or been revoked; ${
                  reloginHint(deps.hostname())
                }`,
              );
            }
            throw new GateError(
              "upstream",
              `cannot refresh the ADC token: ${(err as Error).message}`,
            );
          }
        },
      };
    }
    default:
      throw new GateError(
        "credentials_missing",
        `ADC file ${path} has type "${String(json.type)}", which this gate does not support yet`,
      );
  }
}
