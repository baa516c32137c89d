/**
 * The prod service's interface, its dependencies, and the state its steps
 * share (token cache, single-flight, refusal counts, session access), passed
 * to each step explicitly.
 */
import type { RefusalReport, SessionResponse } from "../shared/protocol.ts";
import { GateError } from "../shared/errors.ts";
import type { Logger } from "../shared/log.ts";
import { sanitizeMessage } from "../shared/redact.ts";
import type { Approver } from "./approval/types.ts";
import type { AuditLog } from "./audit.ts";
import type { GoogleApi, MintedToken } from "./google_api.ts";
import type { IdentityService } from "./identity.ts";
import type { ProdAccessProvider } from "./pam/provider.ts";
import { createSessionAccessTable, type SessionAccessTable } from "./prod_access.ts";
import type { ParsedProdRequest } from "./prod_request.ts";
import type { Session, SessionStore } from "./sessions.ts";
import { createSingleFlight, type SingleFlight } from "./single_flight.ts";
import type { IssuedToken } from "./tokens.ts";

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

/** What every step of the prod service shares. */
export interface ProdState {
  readonly deps: ProdDeps;
  readonly now: () => number;
  readonly approvalId: () => string;
  /** Life of each `prodServiceAccount` token (capped at {@linkcode MAX_PROD_TOKEN_TTL_SECONDS}). */
  readonly prodTtl: number;
  /** Prod tokens by `<session prefix>|<scopes>|<ttl>` (or `once-<id>|`). */
  readonly cache: Map<string, IssuedToken>;
  readonly flight: SingleFlight<IssuedToken>;
  /**
   * Refusal lines per session: the reporter runs in the container, so it must
   * not be able to grow the host's audit log without bound.
   */
  readonly refusals: Map<string, number>;
  readonly access: SessionAccessTable;
}

function randomApprovalId(): string {
  const b = crypto.getRandomValues(new Uint8Array(4));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** The prod service's state, empty. */
export function createProdState(deps: ProdDeps): ProdState {
  const now = deps.now ?? Date.now;
  return {
    deps,
    now,
    approvalId: deps.approvalId ?? randomApprovalId,
    prodTtl: Math.min(deps.prodTokenTtlSeconds, MAX_PROD_TOKEN_TTL_SECONDS),
    cache: new Map(),
    flight: createSingleFlight<IssuedToken>(),
    refusals: new Map(),
    access: createSessionAccessTable({ provider: deps.provider, log: deps.log, now }),
  };
}

/** An error as an audit line: a GateError's message, sanitised; anything else says nothing. */
export function errorText(err: unknown): string {
  return err instanceof GateError ? sanitizeMessage(err.message, 300) : "internal error";
}

/** The error code an audit line records. */
export function errorCode(err: unknown): string {
  return err instanceof GateError ? err.code : "internal";
}

/** An open session, or `session_not_found`. */
export function findSession(state: ProdState, id: string): Session {
  const s = state.deps.sessions.find(id);
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

/** What `POST /session` and `GET /session` answer about a session. */
export function sessionResponse(state: ProdState, s: Session): SessionResponse {
  const sa = state.deps.prodServiceAccount;
  return {
    session_id: s.id,
    expires_in: Math.max(0, Math.floor((s.expiresAt - state.now()) / 1000)),
    project: s.project,
    scopes: [...s.scopes],
    email: s.email,
    service_account: sa ?? s.email,
    token_ttl_seconds: sa === undefined ? null : state.prodTtl,
    request_reason: state.access.get(s.prefix)?.reason,
  };
}
