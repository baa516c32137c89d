/**
 * One profile's collaborators — dev token cache, identity cache, prod
 * sessions, approval limits — behind its own socket. Nothing here is shared
 * with another profile but the ADC, the Google API client, the audit log and
 * the approval queue, so a token minted for one profile can never be served
 * on another's socket, and one profile's denials never cool another down.
 */
import type { WireRequest } from "../shared/http1/parse.ts";
import type { Logger } from "../shared/log.ts";
import { GateError } from "../shared/errors.ts";
import { versionString } from "../shared/version.ts";
import type { Approver } from "./approval/types.ts";
import type { AuditLog } from "./audit.ts";
import type { CredentialProvider } from "./credentials.ts";
import type { GoogleApi } from "./google_api.ts";
import { createIdentityService, type IdentityService } from "./identity.ts";
import { createPamClient, resolveEntitlement } from "./pam/client.ts";
import { createPamProvider, type ProdAccessProvider } from "./pam/provider.ts";
import { createProdService, type ProdService } from "./prod.ts";
import type { Profile } from "./profiles.ts";
import { type ProfileStatus, profileStatus } from "./profile_status.ts";
import {
  type ApprovalLimits,
  type ApprovalRateLimiter,
  createApprovalRateLimiter,
} from "./rate_limit.ts";
import { createGateHandler } from "./routes.ts";
import {
  type ConnectionLimits,
  type GateHandler,
  type GateRequest,
  type GateServer,
  startGateServer,
} from "./server.ts";
import { createSessionStore, type Session, type SessionStore } from "./sessions.ts";
import { createDevTokenMinter, devTokenKey, type DevTokenMinter } from "./tokens.ts";

/**
 * Distinct upstream calls (cache keys) one profile may have in flight. Beyond
 * it a miss on a new key is refused at once (503); callers of a key already
 * in flight join it uncounted (single-flight). A storm on one socket then
 * costs a bounded number of upstream calls, and cached tokens on every socket
 * keep flowing.
 */
export const MAX_UPSTREAM_PER_PROFILE = 32;

/** What every profile shares (one ADC, one audit log, one admin queue). */
export interface SharedCollaborators {
  api: GoogleApi;
  credentials: CredentialProvider;
  audit: AuditLog;
  log: Logger;
  universeDomain: string;
  /** Privileged Access Manager API base URL (`[endpoints] privilegedaccessmanager`). */
  pamEndpoint: string;
  /**
   * Builds the approval chain for one profile's settings around the profile's
   * own rate limiter, which outlives the chain: a reload builds a new chain
   * but keeps the limiter's pending request, cooldown and window.
   */
  approverFor: (profile: Profile, limiter: ApprovalRateLimiter) => Approver;
  /** Aborts on gate shutdown. */
  signal: AbortSignal;
}

export interface ProfileStack {
  readonly profile: Profile;
  /** Its approval limits' state, handed to the stack that replaces it when its socket moves. */
  readonly limiter: ApprovalRateLimiter;
  /** Applies new settings (same socket): new caches and limits; sessions survive unless the prod account changed. */
  update(next: Profile): void;
  /** Forgets cached tokens (the ADC changed). */
  reset(): void;
  status(): ProfileStatus;
  /** Revokes its sessions (audited, unless `revoke` is false), ends waiting approvals, stops listening. */
  stop(reason: string, options?: { revoke?: boolean }): Promise<void>;
  readonly finished: Promise<void>;
}

/** Tags every audit line of a named profile with its name. */
function profileAudit(audit: AuditLog, profile: Profile): AuditLog {
  if (!profile.named) return audit;
  return { ...audit, record: (e) => audit.record({ ...e, profile: profile.name }) };
}

/** Remembers this profile's sessions so status can list them and stop can revoke them. */
function trackedSessions(inner: SessionStore): SessionStore & { live(): Session[] } {
  const ids = new Set<string>();
  const store: SessionStore & { live(): Session[] } = {
    create(info, ttl) {
      const s = inner.create(info, ttl);
      // Expired ids are dropped whenever the set grows past the store's own bound.
      if (ids.size >= 128) store.live();
      ids.add(s.id);
      return s;
    },
    find: (id) => inner.find(id),
    revoke(id) {
      ids.delete(id);
      return inner.revoke(id);
    },
    get size() {
      return inner.size;
    },
    live() {
      const out: Session[] = [];
      for (const id of ids) {
        const s = inner.find(id);
        if (s) out.push(s);
        else ids.delete(id);
      }
      return out;
    },
  };
  return store;
}

/** Bounds the distinct calls of one profile that wait on Google (see MAX_UPSTREAM_PER_PROFILE). */
function upstreamLimit(name: string): <T>(key: string, fn: () => Promise<T>) => Promise<T> {
  // Callers per key in flight: a key counts once, however many wait on it.
  const inFlight = new Map<string, number>();
  return async (key, fn) => {
    const joined = inFlight.get(key);
    if (joined === undefined && inFlight.size >= MAX_UPSTREAM_PER_PROFILE) {
      throw new GateError(
        "rate_limited",
        `profile ${name}: ${MAX_UPSTREAM_PER_PROFILE} different requests already wait for Google on this socket; retry in a moment`,
        { status: 503 },
      );
    }
    inFlight.set(key, (joined ?? 0) + 1);
    try {
      return await fn();
    } finally {
      const left = inFlight.get(key)! - 1;
      if (left === 0) inFlight.delete(key);
      else inFlight.set(key, left);
    }
  };
}

/** The profile's Privileged Access Manager provider, when it names an entitlement. */
function pamProvider(
  profile: Profile,
  shared: SharedCollaborators,
  audit: AuditLog,
): ProdAccessProvider | undefined {
  if (profile.pam_entitlement === undefined) return undefined;
  const entitlement = resolveEntitlement(
    profile.pam_entitlement,
    profile.project_id,
    profile.pam_location,
  );
  shared.log.info(
    `${
      profile.named ? `profile ${profile.name}: ` : ""
    }prod access: Privileged Access Manager grants of ${entitlement}`,
  );
  return createPamProvider({
    client: createPamClient({ endpoint: shared.pamEndpoint }),
    api: shared.api,
    source: () => shared.credentials.token(),
    audit,
    log: shared.log,
    entitlement,
    durationSeconds: profile.pam_grant_duration_seconds,
    waitSeconds: profile.pam_wait_seconds,
    prodServiceAccount: profile.prod_service_account,
  });
}

/** Time a stopping profile gives its PAM grants to be withdrawn (a stuck API must not hold it). */
const RELEASE_TIMEOUT_MS = 5000;

interface Collaborators {
  tokens: DevTokenMinter;
  expiries: Map<string, number>;
  identity: IdentityService;
  prod: ProdService;
  handler: GateHandler;
}

/** The approval limits a profile sets. */
function limitsOf(profile: Profile): ApprovalLimits {
  return {
    cooldownSeconds: profile.denial_cooldown_seconds,
    maxPerMinute: profile.max_approvals_per_minute,
  };
}

function build(
  profile: Profile,
  shared: SharedCollaborators,
  sessions: SessionStore,
  opts: { signal: AbortSignal; limiter: ApprovalRateLimiter },
): Collaborators {
  const { api, credentials } = shared;
  const audit = profileAudit(shared.audit, profile);
  const limit = upstreamLimit(profile.name);
  const source = async (): Promise<string> => (await credentials.token()).token;
  const minter = createDevTokenMinter({ api, source, serviceAccount: profile.service_account });
  // Expiry per cache key, for status (never the token itself).
  const expiries = new Map<string, number>();
  const tokens: DevTokenMinter = {
    peek: (req) => minter.peek(req),
    get: (req, s) => {
      if (minter.peek(req)) return minter.get(req, s);
      const key = devTokenKey(req);
      return limit(`token ${key}`, async () => {
        const t = await minter.get(req, s);
        if (expiries.size >= 256) expiries.clear();
        expiries.set(key, t.expiresAt);
        return t;
      });
    },
    reset: () => (minter.reset(), expiries.clear()),
  };
  const rawIdentity = createIdentityService({
    api,
    source,
    knownEmail: () => {
      try {
        return credentials.current().email;
      } catch {
        return undefined;
      }
    },
    serviceAccount: profile.service_account,
  });
  const identity: IdentityService = {
    email: (s) => limit("email", () => rawIdentity.email(s)),
    projectNumber: (p, s) => limit(`project ${p}`, () => rawIdentity.projectNumber(p, s)),
    idToken: (a, e, s) => limit(`id ${e} ${a}`, () => rawIdentity.idToken(a, e, s)),
    reset: () => rawIdentity.reset(),
  };
  const approver = shared.approverFor(profile, opts.limiter);
  const provider = pamProvider(profile, shared, audit);
  const prod = createProdService({
    // The profile's name goes into every dialog, prompt and pending line.
    approver: profile.named
      ? { decide: (req, s) => approver.decide({ ...req, profile: profile.name }, s) }
      : approver,
    api,
    source: () => credentials.token(),
    identity,
    sessions,
    audit,
    prodServiceAccount: profile.prod_service_account,
    prodTokenTtlSeconds: Math.min(profile.prod_token_ttl_seconds, profile.max_token_ttl_seconds),
    provider,
    requireReason: profile.require_reason,
    log: shared.log,
  });
  const handler = createGateHandler({
    tokens,
    identity,
    serviceAccount: profile.service_account,
    prod,
    audit,
    log: shared.log,
    version: versionString(),
    maxTokenTtlSeconds: profile.max_token_ttl_seconds,
    sessionTtlSeconds: profile.session_ttl_seconds,
    universeDomain: shared.universeDomain,
    defaultProject: profile.project_id,
    startedAt: Date.now(),
    signal: opts.signal,
  });
  return { tokens, expiries, identity, prod, handler };
}

/** Options for {@linkcode startProfileStack}. */
export interface ProfileStackOptions {
  /**
   * The limiter of the stack this one replaces (same profile, socket moved
   * by a reload); its state carries over under this profile's limits.
   */
  limiter?: ApprovalRateLimiter;
}

/** A new limiter, or the carried one under this profile's limits. */
function limiterFor(profile: Profile, carried?: ApprovalRateLimiter): ApprovalRateLimiter {
  if (!carried) return createApprovalRateLimiter(limitsOf(profile));
  carried.reconfigure(limitsOf(profile));
  return carried;
}

/** Listens on the profile's socket; each request goes to the handler of the moment. */
function listen(profile: Profile, log: Logger, handler: () => GateHandler): Promise<GateServer> {
  return startGateServer({
    socketPath: profile.socket_path,
    // One indirection: a reload swaps the collaborators, the socket stays.
    handler: Object.assign((req: GateRequest) => handler()(req), {
      hot: (req: WireRequest, close: boolean) => handler().hot?.(req, close),
    }),
    log,
    ...connectionLimitsOf(profile),
    ...(profile.named
      ? { readyMessage: `ready: profile ${profile.name} listening on ${profile.socket_path}` }
      : {}),
  });
}

/** A profile's per-socket connection limits. */
function connectionLimitsOf(profile: Profile): ConnectionLimits {
  return {
    maxConnections: profile.max_connections,
    idleTimeoutMs: profile.idle_timeout_seconds * 1000,
  };
}

/** Binds the profile's socket and serves it. */
export async function startProfileStack(
  first: Profile,
  shared: SharedCollaborators,
  options: ProfileStackOptions = {},
): Promise<ProfileStack> {
  let profile = first;
  const stopping = new AbortController();
  const signal = AbortSignal.any([stopping.signal, shared.signal]);
  const limiter = limiterFor(profile, options.limiter);
  let sessions = trackedSessions(createSessionStore());
  let current = build(profile, shared, sessions, { signal, limiter });
  const log = shared.log;
  if (!profile.service_account) {
    log.warn(
      `${
        profile.named ? `profile ${profile.name}: ` : ""
      }no service_account configured: dev tokens will be refused until it is set`,
    );
  }
  const server = await listen(profile, log, () => current.handler);
  let stopped = false;

  function revokeAll(reason: string): void {
    for (const s of sessions.live()) {
      try {
        current.prod.revokeSession(s.id, reason);
      } catch { /* expired meanwhile */ }
    }
  }

  return {
    get profile() {
      return profile;
    },
    limiter,
    finished: server.finished,
    update(next) {
      const old = current.prod;
      const pam = next.pam_entitlement !== undefined || profile.pam_entitlement !== undefined;
      if (next.prod_service_account !== profile.prod_service_account || pam) {
        // Sessions were approved for the old account (or hold a PAM grant the
        // old settings own): never let them mint as another; withdraw grants.
        revokeAll("settings reloaded");
        sessions = trackedSessions(createSessionStore());
        void old.close(RELEASE_TIMEOUT_MS).catch((err) => log.warn(String(err)));
      }
      profile = next;
      // Same limiter, new limits: a reload must not end a cooldown (rate_limit.ts).
      limiter.reconfigure(limitsOf(profile));
      current = build(profile, shared, sessions, { signal, limiter });
      server.setLimits(connectionLimitsOf(profile));
      log.info(`profile ${profile.name}: new settings applied`);
    },
    reset() {
      current.tokens.reset();
      current.identity.reset();
      current.prod.reset();
    },
    status: () =>
      profileStatus({
        profile,
        expiries: current.expiries,
        sessions: sessions.live(),
        stopped,
        connections: server.connections,
      }),
    async stop(reason, options = {}) {
      if (stopped) return;
      stopped = true;
      if (profile.named) log.info(`profile ${profile.name}: stopping (${reason})`);
      if (options.revoke !== false) revokeAll(reason);
      const done = server.shutdown();
      stopping.abort(new Error(`profile ${profile.name} stopped: ${reason}`));
      await done;
      // Grants end with the profile (bounded).
      await current.prod.close(RELEASE_TIMEOUT_MS).catch((err) => log.warn(String(err)));
    },
  };
}
