/**
 * Where the tree's values come from: the identity, project and universe the
 * gate reports (asked once), access tokens (from the caller's cache) and ID
 * tokens (from the gate, cached until shortly before they expire).
 */
import { GateError } from "../errors.ts";
import { parseIdentityParams, parseScopesParam } from "./params.ts";
import { etagOf, jsonPayload, type Payload, textPayload } from "./responses.ts";
import { jwtExpiry } from "./jwt.ts";
import { type CachedToken, createExpiringCache, memoize, type TokenCache } from "./token_cache.ts";
import type { LeafContext } from "./tree.ts";
import type { MetadataGate } from "./handler.ts";

/** Logs one warning (rate-limited by the caller). */
export type Warn = (msg: string, fields: Record<string, unknown>) => void;

/** The instance's identity: account, project, zone, names. */
export interface IdentitySources {
  readonly instanceName: string;
  email(): Promise<string>;
  projectId(): Promise<string>;
  projectNumber(): Promise<string>;
  hostname(): Promise<string>;
  zonePath(): Promise<string>;
  instanceId(): string;
  universe(): Promise<string>;
}

/** Options of {@linkcode createIdentitySources}. */
export interface IdentitySourcesOptions {
  gate: MetadataGate;
  projectId: string | undefined;
  serviceAccount: string | undefined;
  zone: string;
  instanceName: string;
}

/** The identity answers, each asked of the gate at most once (failures are not kept). */
export function createIdentitySources(opts: IdentitySourcesOptions): IdentitySources {
  const { gate, zone, instanceName } = opts;
  // Identity, project and universe never change while we run: ask once.
  // The gate names the account whose tokens it hands out (`service_account`);
  // without one configured, tokens are the ADC principal's own. A transient
  // failure is not cached (memoize), so it cannot pin the wrong account.
  const identity = memoize(async () => {
    const r = await gate.identity();
    return r.service_account ?? r.email;
  });
  const project = memoize(async () => {
    const r = await gate.projectNumber(opts.projectId);
    if (!/^\d{1,20}$/.test(r.project_number)) {
      throw new GateError("upstream", "the gate returned a project number that is not digits");
    }
    return r;
  });
  const universe = memoize(() => gate.universeDomain().then((r) => r.universe_domain));
  const projectId = async (): Promise<string> => opts.projectId ?? (await project.get()).project_id;
  const projectNumber = async (): Promise<string> => (await project.get()).project_number;
  return {
    instanceName,
    // The account whose tokens we serve. The gate's /identity names its ADC
    // principal, which is that account only when no service account is
    // impersonated, so the configured account wins.
    email: () => opts.serviceAccount ? Promise.resolve(opts.serviceAccount) : identity.get(),
    projectId,
    projectNumber,
    hostname: async () => `${instanceName}.${zone}.c.${await projectId()}.internal`,
    zonePath: async () => `projects/${await projectNumber()}/zones/${zone}`,
    // A stable id below 2^53, so JavaScript clients read it exactly.
    instanceId: () => String(parseInt(etagOf(`${instanceName}/${zone}`).slice(0, 13), 16)),
    universe: () => universe.get(),
  };
}

/** The token leaves' answers. */
export interface TokenSources {
  /** The `token` answer for a cached token (synchronous: the hot path). */
  tokenAnswer(t: CachedToken): Payload;
  /** `service-accounts/<sa>/token?scopes=`. */
  accessToken(ctx: LeafContext): Promise<Payload>;
  /** `service-accounts/<sa>/identity?audience=`. */
  identityToken(ctx: LeafContext): Promise<Payload>;
}

/** Options of {@linkcode createTokenSources}. */
export interface TokenSourcesOptions {
  tokens: TokenCache;
  gate: MetadataGate;
  now: () => number;
  warn: Warn;
}

/** Access and ID token answers, with the last token body kept for reuse. */
export function createTokenSources(opts: TokenSourcesOptions): TokenSources {
  const { tokens, now } = opts;
  const idTokens = createExpiringCache<string>({ now, maxEntries: 32 });
  // The token answer only changes when the token or its whole-second
  // `expires_in` does: keep the serialised body (and its ETag) until then.
  let lastToken: { token: string; expiresIn: number; payload: Payload } | undefined;

  function tokenAnswer(t: CachedToken): Payload {
    const expiresIn = Math.max(0, Math.floor((t.expiresAt - now()) / 1000));
    if (lastToken?.token === t.accessToken && lastToken.expiresIn === expiresIn) {
      return lastToken.payload;
    }
    const payload = jsonPayload({
      access_token: t.accessToken,
      expires_in: expiresIn,
      token_type: "Bearer",
    });
    lastToken = { token: t.accessToken, expiresIn, payload };
    return payload;
  }

  async function tokenPayload(scopes: readonly string[]): Promise<Payload> {
    let t;
    try {
      t = await tokens.get(scopes);
    } catch (err) {
      // The gate is down or failing: a token that is still valid is better
      // than an error (clients would only retry).
      const stale = tokens.peekValid(scopes);
      if (!stale) throw err;
      opts.warn("gate failed; serving a cached token that is still valid", {
        error: err instanceof GateError ? err.message : String(err),
      });
      t = stale;
    }
    return tokenAnswer(t);
  }

  async function identityToken(ctx: LeafContext): Promise<Payload> {
    const p = parseIdentityParams(ctx.url.search);
    const key = `${p.format}|${p.licenses}|${p.audience}`;
    const jwt = await idTokens.get(key, async () => {
      const r = await opts.gate.identityToken(p);
      return { value: r.id_token, freshUntil: jwtExpiry(r.id_token) - 5 * 60_000 };
    });
    return textPayload(jwt);
  }

  return {
    tokenAnswer,
    accessToken: (ctx) => tokenPayload(parseScopesParam(ctx.params.get("scopes"))),
    identityToken,
  };
}
