/**
 * The prod path: nothing here happens without a human's approval. A request
 * is shown to the approver with everything it will grant; an approval opens a
 * session (or mints one token); every decision is audited, never a token.
 *
 * Prod tokens are the engineer's own ADC token, or — when
 * `prod_service_account` is set — minted by impersonating that account for
 * `prod_token_ttl_seconds` (10 min by default, never above 1 h: Google's
 * default cap on generateAccessToken, and never past the session's end).
 * Short tokens are what makes revocation mean something: a session ends with
 * its with-prod's lease, and the last token it handed out dies minutes later.
 */
import type { RefusalReport, SessionResponse } from "../shared/protocol.ts";
import { GateError, isGateError } from "../shared/errors.ts";
import type { Logger } from "../shared/log.ts";
import { sanitizeMessage } from "../shared/redact.ts";
import type { ApprovalDecision, ApprovalRequest, Approver } from "./approval/types.ts";
import type { AuditEntry, AuditLog } from "./audit.ts";
import type { GoogleApi, MintedToken } from "./google_api.ts";
import type { IdentityService } from "./identity.ts";
import type { ProdAccessProvider } from "./pam/provider.ts";
import { createSessionAccessTable, type SessionAccess } from "./prod_access.ts";
import type { ParsedProdRequest } from "./prod_request.ts";
import { requestReasonFor } from "./request_reason.ts";
import type { Session, SessionStore } from "./sessions.ts";
import { createSingleFlight } from "./single_flight.ts";
import { type IssuedToken, needsRefresh } from "./tokens.ts";

/** Why a session is revoked when the gate stops (audited; its PAM grant is withdrawn as "shutdown"). */
export const REVOKED_GATE_STOPPING = "gate stopping";

/** Refusal lines audited per session before the rest are only counted. */
export const MAX_REFUSALS_PER_SESSION = 20;
/** Google's default cap on generateAccessToken `lifetime` (longer needs an org policy). */
export const MAX_PROD_TOKEN_TTL_SECONDS = 3600;

/** Dependencies of {@linkcode createProdService}. */
export interface ProdDeps {
  approver: Approver;
  api: GoogleApi;
  /** The engineer's ADC access token. */
  source: () => Promise<MintedToken>;
  identity: IdentityService;
  sessions: SessionStore;
  audit: AuditLog;
  prodServiceAccount: string | undefined;
  /**
   * Life of each `prodServiceAccount` token (already capped by
   * max_token_ttl_seconds and 3600 s); asks for longer get this.
   */
  prodTokenTtlSeconds: number;
  now?: () => number;
  /** Short random id shown to the human (and to `gcp-gate approve <id>`). */
  approvalId?: () => string;
  /**
   * Where prod access comes from after an approval (a PAM grant); absent:
   * straight from the engineer's ADC or `prod_service_account`.
   */
  provider?: ProdAccessProvider | undefined;
  /** `require_reason`: refuse sessions without a reason before anyone is asked. */
  requireReason?: boolean;
  log?: Logger;
}

export interface ProdTokenAsk {
  readonly scopes: readonly string[] | undefined;
  readonly ttlSeconds: number | undefined;
}

export interface ProdService {
  /** `onProgress` hears what an approved session still waits for (a PAM grant's approval). */
  openSession(
    req: ParsedProdRequest,
    signal: AbortSignal,
    onProgress?: (message: string) => void,
  ): Promise<SessionResponse>;
  describeSession(id: string): SessionResponse;
  /** True while the session is open (not revoked, not expired). */
  isOpen(id: string): boolean;
  /** Ends the session and drops its tokens; `reason` is audited (e.g. "lease lost"). */
  revokeSession(id: string, reason: string): void;
  /** Audits a caller with-prod's proxy refused (bounded per session). */
  recordRefusal(id: string, report: RefusalReport): void;
  /** A prod token from an open session (no new approval). */
  sessionToken(id: string, ask: ProdTokenAsk, signal: AbortSignal): Promise<MintedToken>;
  /** One prod token after its own approval (`GET /token?level=prod`). */
  oneOffToken(
    req: { scopes: readonly string[]; ttlSeconds: number },
    signal: AbortSignal,
  ): Promise<MintedToken>;
  /** Forgets cached prod tokens (re-login). */
  reset(): void;
  /** Ends what sessions hold upstream (PAM grants), within `timeoutMs` (gate shutdown). */
  close(timeoutMs: number): Promise<void>;
}

function randomApprovalId(): string {
  const b = crypto.getRandomValues(new Uint8Array(4));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

function errorText(err: unknown): string {
  return err instanceof GateError ? sanitizeMessage(err.message, 300) : "internal error";
}

/** Creates the prod service. */
export function createProdService(deps: ProdDeps): ProdService {
  const now = deps.now ?? Date.now;
  const approvalId = deps.approvalId ?? randomApprovalId;
  const prodTtl = Math.min(deps.prodTokenTtlSeconds, MAX_PROD_TOKEN_TTL_SECONDS);
  const cache = new Map<string, IssuedToken>();
  const flight = createSingleFlight<IssuedToken>();
  // Refusal lines per session: the reporter runs in the container, so it must
  // not be able to grow the host's audit log without bound.
  const refusals = new Map<string, number>();
  const access = createSessionAccessTable({ provider: deps.provider, log: deps.log, now });

  function response(s: Session): SessionResponse {
    return {
      session_id: s.id,
      expires_in: Math.max(0, Math.floor((s.expiresAt - now()) / 1000)),
      project: s.project,
      scopes: [...s.scopes],
      email: s.email,
      service_account: deps.prodServiceAccount ?? s.email,
      token_ttl_seconds: deps.prodServiceAccount === undefined ? null : prodTtl,
      request_reason: access.get(s.prefix)?.reason,
    };
  }

  /** The audit fields every prod decision shares, from what the human was asked. */
  function askedFields(ask: ApprovalRequest): Partial<AuditEntry> {
    return {
      email: ask.email,
      scopes: ask.scopes,
      ttl_seconds: ask.ttlSeconds,
      project: ask.project,
      command: ask.command,
      reason: ask.reason,
      approval_id: ask.id,
      approval_code: ask.code,
      ...(ask.from === undefined ? {} : { caller_host: ask.from }),
    };
  }

  /** Asks the approver; audits and throws unless approved. */
  async function approve(
    req: ApprovalRequest,
    endpoint: string,
    signal: AbortSignal,
  ): Promise<ApprovalDecision> {
    const base: AuditEntry = { endpoint, level: "prod", result: "denied", ...askedFields(req) };
    let decision: ApprovalDecision;
    try {
      decision = await deps.approver.decide(req, signal);
    } catch (err) {
      const rateLimited = isGateError(err, "rate_limited");
      deps.audit.record({
        ...base,
        result: rateLimited ? "rate_limited" : "error",
        error: signal.aborted ? "the client went away before a decision" : errorText(err),
        code: err instanceof GateError ? err.code : "internal",
      });
      throw err;
    }
    if (!decision.approved || signal.aborted) {
      deps.audit.record({
        ...base,
        // A caller that hung up is not a human's decision: "withdrawn" may be
        // folded (the container can repeat it at will), a denial never is.
        ...(signal.aborted ? { result: "withdrawn" } : {}),
        approval: `${decision.method}: ${sanitizeMessage(decision.detail, 200)}`,
      });
      throw new GateError(
        "denied",
        `prod access was not approved (${
          sanitizeMessage(decision.detail, 200)
        }); ask the engineer at the host to approve it`,
      );
    }
    return decision;
  }

  async function approvalRequest(
    kind: "session" | "token",
    parts: Omit<ApprovalRequest, "id" | "email" | "kind" | "serviceAccount">,
    signal: AbortSignal,
  ): Promise<ApprovalRequest> {
    const email = await deps.identity.email(signal);
    const grants = deps.provider ? { grants: await deps.provider.describe(signal) } : {};
    return {
      id: approvalId(),
      email,
      kind,
      serviceAccount: deps.prodServiceAccount,
      // What each token really lives: the dialog states it (own credentials: Google's ~1 h).
      tokenTtlSeconds: deps.prodServiceAccount === undefined ? undefined : prodTtl,
      ...grants,
      ...parts,
    };
  }

  /** Mints (or reuses) a prod token for `key`, dying no later than `notAfter`. */
  async function mint(
    key: string,
    scopes: readonly string[],
    lifetimeSeconds: number,
    signal: AbortSignal,
    x?: SessionAccess,
  ): Promise<IssuedToken> {
    const sa = deps.prodServiceAccount;
    const provider = deps.provider;
    const handle = x?.handle;
    // A provider (PAM grant) decides whether a token may still be had, and mints it.
    const viaProvider = handle && provider
      ? () => provider.token(handle, { scopes, lifetimeSeconds, requestReason: x?.reason ?? "" })
      : undefined;
    if (!sa) {
      // The engineer's own token: its life is Google's, not the session's.
      const t = viaProvider ? await viaProvider() : await deps.source();
      return { ...t, issuedAt: now() };
    }
    const hit = cache.get(key);
    if (hit && !needsRefresh(hit, now())) return hit;
    return await flight.run(key, async () => {
      const issuedAt = now();
      const t = viaProvider ? await viaProvider() : await deps.api.generateAccessToken(
        (await deps.source()).token,
        sa,
        scopes,
        lifetimeSeconds,
        { requestReason: x?.reason },
      );
      const issued = { ...t, issuedAt };
      cache.set(key, issued);
      return issued;
    }, signal);
  }

  function session(id: string): Session {
    const s = deps.sessions.find(id);
    if (!s) {
      throw new GateError(
        "session_not_found",
        `no open prod session with id ${
          id.slice(0, 8)
        }…; it expired or was revoked — ask for approval again`,
      );
    }
    return s;
  }

  function dropCached(prefix: string): void {
    for (const k of cache.keys()) if (k.startsWith(`${prefix}|`)) cache.delete(k);
  }

  return {
    async openSession(req, signal, onProgress) {
      if (deps.requireReason && req.reason === undefined) {
        // Before anyone is asked: a dialog for a request that must fail wastes an approval.
        throw new GateError(
          "bad_request",
          "a reason is required for prod access (require_reason): run with-prod --reason '<why>' -- <command>",
        );
      }
      // A session cannot outlive the grant it is for: ask the human for what it really gets.
      const ttlSeconds = Math.min(req.ttlSeconds, deps.provider?.maxSessionSeconds ?? Infinity);
      const ask = await approvalRequest("session", {
        project: req.project,
        scopes: req.scopes,
        ttlSeconds,
        reason: req.reason,
        command: req.command,
        notes: req.notes,
        code: req.code,
        ...(req.from === undefined ? {} : { from: req.from }),
      }, signal);
      const decision = await approve(ask, "/session", signal);
      let s: Session;
      try {
        s = deps.sessions.create({
          email: ask.email,
          project: req.project,
          scopes: req.scopes,
          command: req.command,
        }, ttlSeconds);
      } catch (err) {
        // Approved, yet refused (too many open sessions): the audit must say
        // so, or the log shows a human's approval that led nowhere.
        deps.audit.record({
          endpoint: "/session",
          level: "prod",
          result: isGateError(err, "rate_limited") ? "rate_limited" : "error",
          ...askedFields(ask),
          approval: `${decision.method}: ${sanitizeMessage(decision.detail, 200)}`,
          error: errorText(err),
          code: err instanceof GateError ? err.code : "internal",
        });
        throw err;
      }
      let held: SessionAccess;
      try {
        held = await access.open({
          prefix: s.prefix,
          expiresAt: s.expiresAt,
          approvalId: ask.id,
          email: ask.email,
          reason: req.reason,
          code: req.code,
          command: req.command,
          signal,
          ...(onProgress ? { onProgress } : {}),
        });
      } catch (err) {
        // Approved here, refused upstream (a denied or expired grant): no session.
        deps.sessions.revoke(s.id);
        deps.audit.record({
          endpoint: "/session",
          level: "prod",
          result: isGateError(err, "denied") ? "denied" : "error",
          ...askedFields(ask),
          approval: `${decision.method}: ${sanitizeMessage(decision.detail, 200)}`,
          error: signal.aborted ? "the request ended before the grant was active" : errorText(err),
          code: err instanceof GateError ? err.code : "internal",
        });
        throw err;
      }
      deps.audit.record({
        endpoint: "/session",
        level: "prod",
        result: "granted",
        ...askedFields(ask),
        session: s.prefix,
        grant: held.handle?.label,
        approval: `${decision.method}: ${sanitizeMessage(decision.detail, 200)}`,
      });
      return response(s);
    },
    describeSession(id) {
      return response(session(id));
    },
    isOpen(id) {
      return deps.sessions.find(id) !== undefined;
    },
    revokeSession(id, reason) {
      const s = deps.sessions.revoke(id);
      if (!s) {
        throw new GateError(
          "session_not_found",
          `no open prod session with id ${id.slice(0, 8)}…; it already expired or was revoked`,
        );
      }
      dropCached(s.prefix);
      refusals.delete(s.prefix);
      deps.audit.record({
        endpoint: "/session",
        level: "prod",
        result: "revoked",
        email: s.email,
        scopes: s.scopes,
        project: s.project,
        session: s.prefix,
        reason,
        grant: access.get(s.prefix)?.handle?.label,
      });
      access.end(s.prefix, reason === REVOKED_GATE_STOPPING ? "shutdown" : "revoked");
    },
    recordRefusal(id, report) {
      const s = session(id);
      const n = (refusals.get(s.prefix) ?? 0) + 1;
      refusals.set(s.prefix, n);
      if (n > MAX_REFUSALS_PER_SESSION + 1) return;
      deps.audit.record({
        endpoint: "/session/refusal",
        level: "prod",
        result: "refused",
        email: s.email,
        project: s.project,
        session: s.prefix,
        caller_pid: report.pid,
        caller_command: report.command,
        refusal: n > MAX_REFUSALS_PER_SESSION
          ? `more than ${MAX_REFUSALS_PER_SESSION} refusals in this session; further ones are not logged`
          : report.reason,
      });
    },
    async sessionToken(id, ask, signal) {
      const s = session(id);
      const scopes = ask.scopes ?? s.scopes;
      const extra = scopes.filter((x) => !s.scopes.includes(x));
      if (extra.length > 0) {
        throw new GateError(
          "forbidden",
          `scope ${JSON.stringify(extra[0])} was not approved for this session (approved: ${
            s.scopes.join(", ")
          }); open a new session that asks for it`,
        );
      }
      const remaining = Math.floor((s.expiresAt - now()) / 1000);
      // Short, and never past the session's end: a revoked session (lease
      // lost, DELETE, expiry) leaves no token that lives more than minutes.
      const lifetime = Math.max(1, Math.min(ask.ttlSeconds ?? prodTtl, prodTtl, remaining));
      const base: AuditEntry = {
        endpoint: "/token",
        level: "prod",
        result: "granted",
        email: s.email,
        scopes,
        ttl_seconds: lifetime,
        project: s.project,
        session: s.prefix,
        grant: access.get(s.prefix)?.handle?.label,
      };
      try {
        const key = `${s.prefix}|${[...scopes].sort().join(" ")}|${ask.ttlSeconds ?? "-"}`;
        const before = cache.get(key);
        const t = await mint(key, scopes, lifetime, signal, access.get(s.prefix));
        if (before === t) deps.audit.countHit("/token?session", "prod");
        else deps.audit.record(base);
        return t;
      } catch (err) {
        deps.audit.record({
          ...base,
          result: "error",
          error: errorText(err),
          code: err instanceof GateError ? err.code : "internal",
        });
        throw err;
      }
    },
    async oneOffToken(req, signal) {
      if (deps.provider || deps.requireReason) {
        // A one-off token has no session to hold a grant, nor a reason field.
        throw new GateError(
          "forbidden",
          `one-off prod tokens are off when ${
            deps.provider ? "pam_entitlement" : "require_reason"
          } is set; use with-prod (a prod session) instead`,
        );
      }
      // The human is shown the lifetime the token will really have.
      const ttlSeconds = deps.prodServiceAccount === undefined
        ? req.ttlSeconds
        : Math.min(req.ttlSeconds, prodTtl);
      const ask = await approvalRequest("token", {
        project: undefined,
        scopes: req.scopes,
        ttlSeconds,
        reason: undefined,
        command: undefined,
        notes: [],
      }, signal);
      const decision = await approve(ask, "/token", signal);
      const base: AuditEntry = {
        endpoint: "/token",
        level: "prod",
        result: "granted",
        ...askedFields(ask),
        approval: `${decision.method}: ${sanitizeMessage(decision.detail, 200)}`,
      };
      try {
        const t = await mint(`once-${ask.id}|`, req.scopes, ttlSeconds, signal, {
          reason: requestReasonFor(ask.id, undefined),
          handle: undefined,
        });
        cache.delete(`once-${ask.id}|`);
        deps.audit.record(base);
        return t;
      } catch (err) {
        deps.audit.record({ ...base, result: "error", error: errorText(err) });
        throw err;
      }
    },
    reset() {
      cache.clear();
    },
    close: (timeoutMs) => access.close(timeoutMs),
  };
}
