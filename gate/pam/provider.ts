/**
 * Prod access through a Privileged Access Manager grant, behind the small
 * {@linkcode ProdAccessProvider} seam gate/prod.ts calls: `describe` for the
 * approval dialog, `acquire` after the human approved, `token` for each prod
 * token, `release` when the session ends, `close` when the gate stops.
 *
 * One grant may serve several sessions (PAM allows one open grant per
 * entitlement and requester): it is counted, and withdrawn when the last
 * session using it ends — only if gcp-gate created it; a grant the engineer
 * made in the console is left alone.
 */
import { GateError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/log.ts";
import { redactArgv } from "../../shared/argv_redact.ts";
import { formatDuration } from "../approval/format.ts";
import type { AuditEntry, AuditLog } from "../audit.ts";
import type { GoogleApi, MintedToken } from "../google_api.ts";
import { type Entitlement, type Grant, JUSTIFICATION_PREFIX, type PamClient } from "./client.ts";
import {
  createGrantLifecycle,
  ENDED_STATES,
  endedError,
  type GrantLifecycle,
} from "./lifecycle.ts";

/** What a provider learns about an approved request. */
export interface ProdAccessContext {
  readonly approvalId: string;
  readonly email: string;
  readonly reason: string | undefined;
  readonly code: string | undefined;
  /** Redacted and capped by the gate. */
  readonly command: readonly string[] | undefined;
  /** Sent as X-Goog-Request-Reason on every call made for this session. */
  readonly requestReason: string;
  readonly signal: AbortSignal;
  /** Tells the engineer what the request waits for. */
  readonly onProgress?: (message: string) => void;
}

/** One session's hold on prod access; `label` names it in the audit log. */
export interface ProdAccessHandle {
  readonly label: string;
}

export interface ProdTokenAsk {
  readonly scopes: readonly string[];
  readonly lifetimeSeconds: number;
  readonly requestReason: string;
}

export type ReleaseReason = "ended" | "revoked" | "expired" | "shutdown";

/** The seam gate/prod.ts calls. */
export interface ProdAccessProvider {
  /** Longest useful session (the grant's duration); sessions are capped to it. */
  readonly maxSessionSeconds?: number;
  /** The dialog's "Grants:" text (after the label). */
  describe(signal: AbortSignal): Promise<string>;
  acquire(ctx: ProdAccessContext): Promise<ProdAccessHandle>;
  token(handle: ProdAccessHandle, ask: ProdTokenAsk): Promise<MintedToken>;
  release(handle: ProdAccessHandle, why: ReleaseReason): Promise<void>;
  /** Releases everything still held, within `timeoutMs` (gate shutdown). */
  close(timeoutMs: number): Promise<void>;
}

/** Dependencies of {@linkcode createPamProvider}. */
export interface PamProviderDeps {
  client: PamClient;
  api: GoogleApi;
  /** The engineer's ADC access token. */
  source: () => Promise<MintedToken>;
  audit: AuditLog;
  log: Logger;
  /** Full entitlement name. */
  entitlement: string;
  durationSeconds: number;
  waitSeconds: number;
  prodServiceAccount: string | undefined;
  now?: () => number;
  pollMs?: number;
  /** A grant is read again before a token at most this often (ms). */
  recheckMs?: number;
}

interface Held {
  grant: Grant;
  holders: number;
  ours: boolean;
  checkedAt: number;
  requestReason: string;
  ended: GateError | undefined;
}

/** Longest part of the container's reason that goes into a justification. */
const JUSTIFICATION_REASON_CHARS = 120;
/** Arguments of the command a justification shows. */
const JUSTIFICATION_ARGS = 8;

/** One line, runs of whitespace as one space: padding cannot push text out of view. */
function oneLine(s: string): string {
  return s.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\s]+/gu, " ").trim();
}

/**
 * The justification PAM records, which a teammate reads in Google's console
 * before approving the grant: approval id, code, email, then the command
 * (labelled), then the container's reason last, labelled, quoted and capped.
 *
 * Why this order: the reason is container text (up to 500 characters). When it
 * came before the command, a reason such as `read-only check — command: gcloud
 * billing accounts list` plus padding showed a fake command and pushed the real
 * one past the 500-character cut. Now the gate's own text comes first, the
 * reason can only ever appear inside its quotes at the end, and it is cut at
 * 120 characters (saying so) so the whole fits well under PAM's limit.
 */
export function justificationFor(ctx: ProdAccessContext): string {
  const all = ctx.command ?? [];
  const argv = redactArgv(all.slice(0, JUSTIFICATION_ARGS)).argv
    .map((a) => oneLine(a))
    .map((a) => (a.length > 40 ? `${a.slice(0, 39)}…` : a));
  const more = all.length > JUSTIFICATION_ARGS
    ? ` (+${all.length - JUSTIFICATION_ARGS} more arguments)`
    : "";
  const cmd = argv.length > 0 ? `${argv.join(" ")}${more}` : "not given";
  // Double quotes inside the reason become single ones: the closing quote is ours.
  const said = oneLine(ctx.reason ?? "").replaceAll('"', "'");
  const reason = said === ""
    ? "none given"
    : said.length > JUSTIFICATION_REASON_CHARS
    ? `"${
      said.slice(0, JUSTIFICATION_REASON_CHARS)
    }…" (cut at ${JUSTIFICATION_REASON_CHARS} characters)`
    : `"${said}"`;
  const text = oneLine(
    `${JUSTIFICATION_PREFIX} approval ${ctx.approvalId}${
      ctx.code ? ` (code ${ctx.code})` : ""
    } for ${ctx.email} — command: ${cmd} — reason given: ${reason}`,
  );
  return text.length > 500 ? `${text.slice(0, 499)}…` : text;
}

/** What the provider's steps share: the deps, the grants held, the entitlement once read. */
interface ProviderState {
  readonly deps: PamProviderDeps;
  readonly now: () => number;
  readonly recheckMs: number;
  readonly held: Map<string, Held>;
  entitlement: Entitlement | undefined;
  readonly src: () => Promise<string>;
  readonly lifecycle: GrantLifecycle;
}

/** The audit result for a grant that reached `state`. */
function resultOf(state: string): AuditEntry["result"] {
  return state === "ACTIVE"
    ? "granted"
    : state === "WITHDRAWN"
    ? "withdrawn"
    : ENDED_STATES.has(state)
    ? (state === "DENIED" ? "denied" : "ended")
    : "waiting";
}

function endsAt(h: Held): number | undefined {
  const d = Number(/^(\d+)/.exec(h.grant.requestedDuration ?? "")?.[1]);
  return h.grant.activatedAt !== undefined && Number.isFinite(d)
    ? h.grant.activatedAt + d * 1000
    : undefined;
}

/** Drops one holder of `name`; the last one withdraws the grant if gcp-gate created it. */
async function withdrawIfLast(
  state: ProviderState,
  name: string,
  opts: { why: ReleaseReason; timeoutMs: number },
): Promise<void> {
  const { deps, held } = state;
  const { why } = opts;
  const h = held.get(name);
  if (!h) return;
  h.holders--;
  if (h.holders > 0) return;
  held.delete(name);
  if (!h.ours || h.ended) {
    if (!h.ours) {
      deps.audit.record({
        endpoint: "pam",
        level: "prod",
        result: "granted",
        grant: name,
        grant_state: h.grant.state,
        error: "left active: not created by gcp-gate (withdraw it yourself when done)",
      });
    }
    return;
  }
  try {
    const what = await state.lifecycle.withdraw(name, h.requestReason, opts.timeoutMs);
    deps.audit.record({
      endpoint: "pam",
      level: "prod",
      result: "withdrawn",
      grant: name,
      approval: `${why}: ${what}`,
    });
  } catch (err) {
    deps.log.warn(`could not withdraw PAM grant ${name}; withdraw it in the console`, {
      error: (err as Error).message,
    });
    deps.audit.record({
      endpoint: "pam",
      level: "prod",
      result: "error",
      grant: name,
      error: `withdrawal failed (${why}): ${(err as Error).message.slice(0, 200)}`,
    });
  }
}

/** The dialog's one line: the entitlement, a few roles, the duration, whose tokens. */
async function describeGrant(state: ProviderState, signal: AbortSignal): Promise<string> {
  const { deps } = state;
  if (state.entitlement === undefined) {
    try {
      state.entitlement = await deps.client.getEntitlement(await state.src(), deps.entitlement, {
        signal: AbortSignal.any([signal, AbortSignal.timeout(3000)]),
      });
    } catch (err) {
      deps.log.debug("could not read the entitlement's roles", { error: String(err) });
    }
  }
  // One line that fits the dialog's width: the entitlement, a few roles, the duration, whose tokens.
  const all = state.entitlement?.roles ?? [];
  const roles = all.length === 0
    ? ""
    : ` (${all.slice(0, 3).join(", ")}${all.length > 3 ? ` +${all.length - 3} more` : ""})`;
  const whose = deps.prodServiceAccount === undefined
    ? "tokens: YOUR OWN (all your permissions + the granted roles)"
    : `tokens: ${deps.prodServiceAccount}`;
  return `PAM grant of ${deps.entitlement}${roles} for ${
    formatDuration(deps.durationSeconds)
  }, withdrawn at session end; ${whose}`;
}

/** An active grant for the session (created or found), held until released. */
async function acquireGrant(
  state: ProviderState,
  ctx: ProdAccessContext,
): Promise<ProdAccessHandle> {
  const { deps, held } = state;
  const { grant, created } = await state.lifecycle.acquire({
    entitlement: deps.entitlement,
    durationSeconds: deps.durationSeconds,
    justification: justificationFor(ctx),
    requestId: crypto.randomUUID(),
    requestReason: ctx.requestReason,
    waitMs: deps.waitSeconds * 1000,
    signal: ctx.signal,
    onProgress: ctx.onProgress,
  });
  const h = held.get(grant.name);
  if (h) {
    h.holders++;
    h.grant = grant;
  } else {
    held.set(grant.name, {
      grant,
      holders: 1,
      ours: created,
      checkedAt: state.now(),
      requestReason: ctx.requestReason,
      ended: undefined,
    });
  }
  return { label: grant.name };
}

/** Looks at the grant again once `recheckMs` has passed; a failed look is only logged. */
async function recheck(state: ProviderState, h: Held, requestReason: string): Promise<void> {
  if (state.now() - h.checkedAt < state.recheckMs) return;
  try {
    h.grant = await state.lifecycle.check(h.grant.name, requestReason);
    h.checkedAt = state.now();
  } catch (err) {
    // The look is for a clear message, not for safety (Google itself
    // takes the roles away when a grant ends): a PAM outage must not
    // stop a session whose grant is known to be active.
    state.deps.log.warn(
      `could not read PAM grant ${h.grant.name}; trying again at the next token`,
      {
        error: (err as Error).message,
      },
    );
  }
}

/** A token while the grant is active, never outliving it. */
async function grantToken(
  state: ProviderState,
  handle: ProdAccessHandle,
  ask: ProdTokenAsk,
): Promise<MintedToken> {
  const { deps, now } = state;
  const h = state.held.get(handle.label);
  if (!h) throw new GateError("grant_ended", `grant ${handle.label} was released`);
  if (h.ended) throw h.ended;
  await recheck(state, h, ask.requestReason);
  const end = endsAt(h);
  if (h.grant.state !== "ACTIVE" || (end !== undefined && end <= now())) {
    const grantState = h.grant.state === "ACTIVE" ? "ENDED" : h.grant.state;
    if (grantState !== h.grant.state) {
      // Ended by the clock, before Google's answer said so: audit it like a state change.
      deps.audit.record({
        endpoint: "pam",
        level: "prod",
        result: "ended",
        grant: h.grant.name,
        grant_state: grantState,
      });
    }
    h.ended = endedError({ ...h.grant, state: grantState });
    throw h.ended;
  }
  const sa = deps.prodServiceAccount;
  if (sa === undefined) return await deps.source();
  // The token must not outlive the grant that allowed minting it.
  const left = end === undefined ? ask.lifetimeSeconds : Math.floor((end - now()) / 1000);
  return await deps.api.generateAccessToken(
    await state.src(),
    sa,
    ask.scopes,
    Math.max(1, Math.min(ask.lifetimeSeconds, left)),
    { requestReason: ask.requestReason },
  );
}

/** Creates the PAM provider. */
export function createPamProvider(deps: PamProviderDeps): ProdAccessProvider {
  const now = deps.now ?? Date.now;
  const src = async (): Promise<string> => (await deps.source()).token;
  const lifecycle = createGrantLifecycle({
    client: deps.client,
    source: src,
    now,
    ...(deps.pollMs === undefined ? {} : { pollMs: deps.pollMs }),
    onState: (g, previous) => {
      deps.log.info(`PAM grant ${g.name}: ${previous ?? "seen"} → ${g.state}`);
      deps.audit.record({
        endpoint: "pam",
        level: "prod",
        result: resultOf(g.state),
        grant: g.name,
        grant_state: g.state,
      });
    },
  });
  const state: ProviderState = {
    deps,
    now,
    recheckMs: deps.recheckMs ?? 2000,
    held: new Map(),
    entitlement: undefined,
    src,
    lifecycle,
  };
  return {
    maxSessionSeconds: deps.durationSeconds,
    describe: (signal) => describeGrant(state, signal),
    acquire: (ctx) => acquireGrant(state, ctx),
    token: (handle, ask) => grantToken(state, handle, ask),
    async release(handle, why) {
      await withdrawIfLast(state, handle.label, { why, timeoutMs: 10_000 });
    },
    async close(timeoutMs) {
      const names = [...state.held.keys()];
      for (const n of names) state.held.get(n)!.holders = 1;
      await Promise.all(names.map((n) => withdrawIfLast(state, n, { why: "shutdown", timeoutMs })));
    },
  };
}
