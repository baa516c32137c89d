/**
 * What `gcp-gate accounts` and `gcp-gate can` share: the engineer's ADC
 * (read on the host, like the daemon does) and a short-lived token for each
 * identity they may ask about. These commands run on the host as the
 * engineer, who holds the ADC anyway; the tokens they mint are used for one
 * read-only question (list, testIamPermissions) and never printed or stored.
 */
import type { Config } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import { hostCredentialProvider } from "./credentials.ts";
import { createGoogleApi, type GoogleApi, type GoogleJsonCalls } from "./google_api.ts";

/** Whose permissions a question is about. */
export type Identity = "dev" | "prod" | "me";
export const IDENTITIES: readonly Identity[] = ["dev", "prod", "me"];

const CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform";
/** Lifetime of a token minted for one question: it is used within seconds. */
const QUESTION_TOKEN_SECONDS = 600;

/** A token for one identity, with who it is. */
export interface IdentityToken {
  readonly as: Identity;
  /** The principal's email, when known. */
  readonly email: string | undefined;
  readonly token: string;
  /** Something the engineer should know about this identity (shown once). */
  readonly note: string | undefined;
}

/** What the inspection commands call. */
export interface Inspector {
  readonly api: GoogleJsonCalls;
  tokenAs(as: Identity): Promise<IdentityToken>;
}

/** Dependencies of {@linkcode createInspector} (real ones by default). */
export interface InspectorDeps {
  api?: GoogleApi & GoogleJsonCalls;
}

/** Builds the inspector from the gate's config. */
export function createInspector(config: Config, deps: InspectorDeps = {}): Inspector {
  const api = deps.api ?? createGoogleApi({ endpoints: config.endpoints });
  const credentials = hostCredentialProvider(config, api);
  const adc = async (): Promise<string> => (await credentials.token()).token;
  const adcEmail = async (token: string): Promise<string | undefined> => {
    const known = credentials.current().email;
    if (known) return known;
    try {
      return await api.tokenEmail(token);
    } catch {
      return undefined; // only shown to the engineer; the question still works
    }
  };
  const mint = async (as: Identity, sa: string, note?: string): Promise<IdentityToken> => {
    const t = await api.generateAccessToken(
      await adc(),
      sa,
      [CLOUD_PLATFORM],
      QUESTION_TOKEN_SECONDS,
    );
    return { as, email: sa, token: t.token, note };
  };
  return {
    api,
    async tokenAs(as) {
      if (as === "dev") {
        if (!config.service_account) {
          throw new GateError(
            "config",
            "no service_account configured: set service_account (the dev account) in the gate's config, or ask --as me",
          );
        }
        return await mint("dev", config.service_account);
      }
      if (as === "prod" && config.prod_service_account) {
        return await mint("prod", config.prod_service_account);
      }
      const token = await adc();
      const email = await adcEmail(token);
      return {
        as,
        email,
        token,
        note: as === "prod"
          ? "no prod_service_account is configured: prod access is your own credentials"
          : undefined,
      };
    },
  };
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** The permissions Google says are held, from a testIamPermissions answer. */
export function heldPermissions(answer: unknown): Set<string> {
  const list = (answer as { permissions?: unknown } | null)?.permissions;
  return new Set(Array.isArray(list) ? list.filter((p) => typeof p === "string") : []);
}
