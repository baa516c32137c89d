/**
 * Facts about identities the proxy serves as metadata: the engineer's email,
 * project numbers, and ID tokens of the dev service account. All cached, all
 * single-flight: metadata clients ask for these often.
 */
import { GateError } from "../shared/errors.ts";
import type { GoogleApi } from "./google_api.ts";
import { createSingleFlight } from "./single_flight.ts";
import { type IssuedToken, needsRefresh } from "./tokens.ts";

export interface IdentityService {
  /** The engineer's email (the ADC principal). */
  email(signal?: AbortSignal): Promise<string>;
  /** The numeric id of `project`. */
  projectNumber(project: string, signal?: AbortSignal): Promise<string>;
  /** An OIDC ID token of the dev service account for `audience`. */
  idToken(
    audience: string,
    includeEmail: boolean,
    signal?: AbortSignal,
  ): Promise<IssuedToken & { cached: boolean }>;
  /** Forgets everything (after a re-login the engineer may be someone else). */
  reset(): void;
}

/** Dependencies of {@linkcode createIdentityService}. */
export interface IdentityDeps {
  api: GoogleApi;
  /** An access token of the engineer's ADC. */
  source: () => Promise<string>;
  /** The ADC principal's email when the ADC file names it (service accounts). */
  knownEmail: () => string | undefined;
  serviceAccount: string | undefined;
  now?: () => number;
  /** Most cached projects / audiences (oldest dropped beyond it). */
  maxEntries?: number;
}

/** Reads `exp` (seconds) from a JWT without verifying it: only to size the cache. */
export function jwtExpiry(jwt: string): number | undefined {
  try {
    const payload = jwt.split(".")[1] ?? "";
    const json = JSON.parse(atob(payload.replaceAll("-", "+").replaceAll("_", "/")));
    return typeof json.exp === "number" ? json.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

function bounded<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value!);
}

/** Creates the identity service. */
export function createIdentityService(deps: IdentityDeps): IdentityService {
  const now = deps.now ?? Date.now;
  const max = deps.maxEntries ?? 256;
  let email: string | undefined;
  const projects = new Map<string, string>();
  const idTokens = new Map<string, IssuedToken>();
  const flight = createSingleFlight<string>();
  const idFlight = createSingleFlight<IssuedToken>();
  let generation = 0;

  return {
    async email(signal) {
      if (email !== undefined) return email;
      const known = deps.knownEmail();
      if (known !== undefined) return known;
      const gen = generation;
      const e = await flight.run("email", async () => {
        return await deps.api.tokenEmail(await deps.source());
      }, signal);
      if (gen === generation) email = e;
      return e;
    },
    async projectNumber(project, signal) {
      const hit = projects.get(project);
      if (hit !== undefined) return hit;
      const gen = generation;
      const n = await flight.run(`project:${project}`, async () => {
        return await deps.api.projectNumber(await deps.source(), project);
      }, signal);
      // Project numbers never change: cache for the gate's life (bounded).
      if (gen === generation) bounded(projects, project, n, max);
      return n;
    },
    async idToken(audience, includeEmail, signal) {
      const sa = deps.serviceAccount;
      if (!sa) {
        throw new GateError(
          "config",
          "no service_account configured: set service_account in the gate's config (ID tokens are the dev service account's)",
          { status: 503 },
        );
      }
      const key = `${includeEmail ? "full" : "standard"}|${audience}`;
      const hit = idTokens.get(key);
      if (hit && !needsRefresh(hit, now())) return { ...hit, cached: true };
      const gen = generation;
      const leader = !idFlight.has(key);
      const t = await idFlight.run(key, async () => {
        const issuedAt = now();
        const token = await deps.api.generateIdToken(
          await deps.source(),
          sa,
          audience,
          includeEmail,
        );
        return { token, issuedAt, expiresAt: jwtExpiry(token) ?? issuedAt + 3600_000 };
      }, signal);
      if (gen === generation) bounded(idTokens, key, t, max);
      return { ...t, cached: !leader };
    },
    reset() {
      generation++;
      email = undefined;
      projects.clear();
      idTokens.clear();
    },
  };
}
