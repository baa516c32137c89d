/**
 * The with-prod flow: resolve the command, get a prod session approved, start
 * the temporary proxy and the private gcloud config, run the command, and
 * always tear down (proxy stopped, session revoked, config deleted).
 */
import { redactArgv } from "../shared/argv_redact.ts";
import { printError } from "../shared/cli.ts";
import type { Config } from "../shared/config.ts";
import { GateError, isGateError } from "../shared/errors.ts";
import type { GateClient } from "../shared/gate_client.ts";
import type { Logger } from "../shared/log.ts";
import type { SessionLease } from "../shared/session_lease.ts";
import { createApprovalCode } from "./approval_code.ts";
import { buildChildEnv, NESTING_MARKER, parseExtra, parseNestingMarker } from "./child_env.ts";
import { createPrivateConfig, type PrivateConfig } from "./cloudsdk_config.ts";
import { resolveCommand } from "./command.ts";
import { pinnedGateClient, preflightGate } from "./preflight.ts";
import { type CallerOrigin, callerOrigin } from "./origin.ts";
import { probeProxy } from "./probe.ts";
import { exitCodeForSignal, supervise } from "./supervise.ts";
import { type ActiveSession, startTempProxy, type TempProxy } from "./temp_proxy.ts";

const PROGRAM = "with-prod";
/** After this long waiting for approval, tell the user where to approve. */
const HINT_AFTER_MS = 10_000;
/** Longest wait for a decision: beyond the gate's longest approval timeout (3600 s). */
const APPROVAL_DEADLINE_MS = 3_700_000;
const SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"];

/** What the user asked for. */
export interface WithProdRequest {
  readonly config: Config;
  /** The command and its arguments (everything after `--`). */
  readonly command: readonly string[];
  readonly reason: string | undefined;
  /** `--project`, else `project_id`. */
  readonly project: string | undefined;
  /** Raw `-e K=V` arguments. */
  readonly extras: readonly string[];
}

/** Splits `scopes` as configured (commas or spaces). */
export function parseScopeList(raw: string): string[] {
  return [...new Set(raw.split(/[,\s]+/).filter((s) => s !== ""))];
}

/**
 * Signals that arrive while with-prod is not supervising the child (waiting
 * for approval, starting up, tearing down): remembered, never fatal, so
 * teardown always runs.
 */
function guardSignals(onSignal: (s: Deno.Signal) => void): () => void {
  const handlers = SIGNALS.map((s) => [s, () => onSignal(s)] as const);
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  return () => {
    for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  };
}

async function spawnAndWait(
  path: string,
  args: readonly string[],
  env: Record<string, string>,
  onSpawn: (pid: number) => void,
): Promise<number> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(path, {
      args: [...args],
      env,
      clearEnv: true,
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
  } catch (err) {
    // Resolved but not runnable (no shebang, wrong architecture, no permission).
    printError(PROGRAM, `${path}: cannot execute: ${(err as Error).message.split("\n")[0]}`);
    return 126;
  }
  onSpawn(child.pid);
  return await supervise(child, { stdinIsTerminal: Deno.stdin.isTerminal() });
}

/**
 * Asks the gate for a session; a signal cancels the request. The approval
 * code goes to the user's terminal before the request leaves: the human
 * compares it with the one the approval method shows, so a look-alike
 * request another process sent first (it can copy our argv from /proc, not
 * the code) is told apart and denied.
 */
async function askForSession(
  gate: GateClient,
  req: WithProdRequest,
  scopes: string[],
  cancel: AbortSignal,
  origin: CallerOrigin,
): Promise<SessionLease> {
  const code = createApprovalCode();
  printError(
    PROGRAM,
    `approval code ${code} — approve only a request that shows this code`,
  );
  const hint = setTimeout(() => {
    printError(
      PROGRAM,
      `waiting for approval of code ${code} — approve on the host: dialog, terminal, or \`gcp-gate approve <id>\` (\`gcp-gate pending\` lists ids and codes)`,
    );
  }, HINT_AFTER_MS);
  try {
    // The request holds the session's lease from here: if with-prod dies or
    // is cancelled, the gate withdraws the request or revokes the session.
    return await gate.openSession({
      // Redacted here, before the argv leaves the container.
      command: redactArgv(req.command).argv,
      ...(req.reason !== undefined ? { reason: req.reason } : {}),
      ...(req.project !== undefined ? { project: req.project } : {}),
      scopes,
      ttl_seconds: req.config.session_ttl_seconds,
      code,
      ...origin,
    }, {
      signal: cancel,
      timeoutMs: APPROVAL_DEADLINE_MS,
      onProgress: (message) => printError(PROGRAM, message),
    });
  } catch (err) {
    if (isGateError(err, "rate_limited")) {
      // The gate asks one human at a time. A request we did not send may be
      // the one on screen, made to look like ours: say so, so it gets denied.
      throw new GateError(
        "rate_limited",
        `prod access not requested: ${err.message}. If another request is on screen now, it is not this with-prod's (its code is not ${code}): deny it`,
        err.retryAfterSeconds !== undefined ? { retryAfterSeconds: err.retryAfterSeconds } : {},
      );
    }
    throw err;
  } finally {
    clearTimeout(hint);
  }
}

/**
 * A lease the gate ended (revoked, expired, gate stopped or restarted) means
 * no more prod tokens: say so once, and stop the proxy so that not even a
 * cached token is served any more (the engineer's own token would live ~1 h).
 */
function watchLease(lease: SessionLease, proxy: TempProxy, log: Logger): () => void {
  let watching = true;
  void lease.ended.then((end) => {
    if (end.kind === "closed" || !watching) return;
    log.warn(
      `prod session lost: ${end.detail}; no further prod tokens for this command (tokens already handed out live until their expiry)`,
    );
    proxy.shutdown().catch(() => {});
  });
  return () => {
    watching = false;
  };
}

/** What the steps after the command's resolution share. */
interface RunContext {
  readonly req: WithProdRequest;
  readonly log: Logger;
  readonly path: string;
  readonly args: readonly string[];
  readonly callerEnv: Record<string, string>;
  readonly scopes: string[];
  readonly cancel: AbortSignal;
  /** The first signal received, if any: with-prod then exits as the signal says. */
  readonly received: () => Deno.Signal | undefined;
  /** Run when with-prod ends (e.g. the pinned socket directory's descriptor). */
  readonly closers: (() => void)[];
}

/** 8. Nested inside a with-prod for the same project: its proxy and session, or undefined. */
async function runNested(ctx: RunContext): Promise<number | undefined> {
  const { req, callerEnv, scopes } = ctx;
  const outer = parseNestingMarker(callerEnv[NESTING_MARKER]);
  if (
    !outer || outer.project !== req.project || !scopes.every((s) => outer.scopes.includes(s)) ||
    !(await probeProxy(outer.proxy))
  ) {
    return undefined;
  }
  ctx.log.debug("reusing the running prod session", { proxy: outer.proxy });
  const env = buildChildEnv(callerEnv, {
    proxy: outer.proxy,
    configDir: outer.configDir,
    account: outer.account,
    project: outer.project,
    scopes: outer.scopes,
    extras: req.extras,
  });
  const received = ctx.received();
  if (received) return exitCodeForSignal(received);
  return await spawnAndWait(ctx.path, [...ctx.args], env, () => {});
}

/** Teardown, whatever happened: revoke, stop the proxy, delete the config, end the lease. */
async function teardown(
  ctx: RunContext,
  held: {
    gate: GateClient;
    sessionId: string;
    lease: SessionLease;
    proxy: TempProxy | undefined;
    cfg: PrivateConfig | undefined;
  },
): Promise<void> {
  const { log } = ctx;
  const { gate, proxy, cfg } = held;
  log.debug("tearing down: revoking the session, stopping the proxy");
  // Revoke first (it is what shortens the credentials' life), in parallel
  // with stopping the proxy; both are bounded.
  const revoked = gate.deleteSession(held.sessionId, { timeoutMs: 5000 }).catch((err) =>
    log.warn(
      "could not revoke the prod session at the gate; it ends at its expiry (or restart gcp-gate)",
      { error: (err as Error).message },
    )
  );
  const stopped = proxy?.shutdown().catch((err) =>
    log.warn("stopping the temporary proxy failed", { error: String(err) })
  );
  try {
    cfg?.remove();
  } catch (err) {
    log.warn(`could not delete ${cfg?.dir}; delete it yourself`, { error: String(err) });
  }
  await Promise.all([revoked, stopped]);
  // Ends the lease: had DELETE not reached the gate, this alone revokes the session.
  held.lease.close();
  gate.close();
  log.debug("teardown done");
}

/** 3 to 7: with an approved session, the proxy, the private config, the command, teardown. */
async function runApproved(
  ctx: RunContext,
  opts: { gate: GateClient; lease: SessionLease; proxyStart: Promise<TempProxy> },
): Promise<number> {
  const { log, req } = ctx;
  const { gate, lease } = opts;
  const session = lease.session;
  const project = session.project ?? req.project;
  let proxy: TempProxy | undefined;
  let cfg: PrivateConfig | undefined;
  let unwatch = (): void => {};
  try {
    // 3. The temporary proxy, serving nobody until the child exists.
    proxy = await opts.proxyStart;
    log.debug("temporary proxy ready", { proxy: proxy.hostPort });
    unwatch = watchLease(lease, proxy, log);
    const sessionScopes = session.scopes.length > 0 ? session.scopes : ctx.scopes;
    // 5. Private gcloud config naming the account and project, with no
    // credential: gcloud gets its token from the proxy like every other
    // client (a token file would be readable by any same-uid process).
    cfg = createPrivateConfig({ account: session.service_account, project });
    // Warm the proxy's cache so the command's first token request is quick;
    // a failure here is answered to the command by the proxy itself.
    proxy.tokens.get(sessionScopes).catch(() => {});
    const env = buildChildEnv(ctx.callerEnv, {
      proxy: proxy.hostPort,
      configDir: cfg.dir,
      account: session.service_account,
      project,
      scopes: sessionScopes,
      extras: req.extras,
      requestReason: session.request_reason,
    });
    const received = ctx.received();
    if (received) return exitCodeForSignal(received);
    // 4 + 6. Run it; only its process tree may use the proxy.
    const p = proxy;
    log.debug("starting the command", { command: ctx.path });
    return await spawnAndWait(ctx.path, [...ctx.args], env, (pid) => p.allowTree(pid));
  } finally {
    // 7. Teardown, whatever happened.
    unwatch();
    await teardown(ctx, { gate, sessionId: session.session_id, lease, proxy, cfg });
  }
}

/** 2. Asks the gate (a human decides); the proxy starts meanwhile. */
async function runWithGate(ctx: RunContext): Promise<number> {
  const { req, log } = ctx;
  const pinned = pinnedGateClient(req.config, log);
  ctx.closers.push(() => pinned.close());
  const { gate, trust } = pinned;
  const exitOrThrow = (err: unknown): number => {
    const received = ctx.received();
    if (received) return exitCodeForSignal(received);
    throw err;
  };
  try {
    await preflightGate({
      config: req.config,
      gate,
      deps: trust,
      signal: ctx.cancel,
    });
  } catch (err) {
    return exitOrThrow(err);
  }
  // The proxy serves nobody until the command runs, and it saves time after approval.
  const opened: { session?: ActiveSession } = {};
  const proxyStart = startTempProxy({
    gate,
    session: () => opened.session,
    project: req.project,
    zone: req.config.zone,
    log,
    maxConnections: req.config.max_connections,
    idleTimeoutMs: req.config.idle_timeout_seconds * 1000,
  });
  // Handled where it is awaited; this only stops an early failure counting as unhandled.
  proxyStart.catch(() => {});
  let lease: SessionLease;
  try {
    log.debug("asking the gate for a prod session");
    lease = await askForSession(
      gate,
      req,
      ctx.scopes,
      ctx.cancel,
      callerOrigin(ctx.callerEnv, Deno.hostname),
    );
  } catch (err) {
    await (await proxyStart.catch(() => undefined))?.shutdown();
    gate.close();
    return exitOrThrow(err);
  }
  const session = lease.session;
  opened.session = {
    id: session.session_id,
    email: session.email,
    service_account: session.service_account,
  };
  const project = session.project ?? req.project;
  log.info(`approved: prod session for ${project ? `project ${project}` : "no project"}`, {
    account: session.service_account,
    expires_in: session.expires_in,
    token_ttl_seconds: session.token_ttl_seconds,
  });
  return await runApproved(ctx, { gate, lease, proxyStart });
}

/** Runs the whole flow; returns with-prod's exit code. */
export async function runWithProd(req: WithProdRequest, log: Logger): Promise<number> {
  const [name, ...args] = req.command;
  // 1. The command first: a typo costs no approval.
  const resolved = resolveCommand(name ?? "", { path: Deno.env.get("PATH"), cwd: Deno.cwd() });
  if (!resolved.ok) {
    printError(PROGRAM, resolved.message);
    return resolved.exitCode;
  }
  for (const e of req.extras) parseExtra(e); // usage errors before anyone is asked
  const callerEnv = Deno.env.toObject();
  const scopes = parseScopeList(req.config.scopes);
  let received: Deno.Signal | undefined;
  const cancel = new AbortController();
  const unguard = guardSignals((s) => {
    received ??= s;
    cancel.abort();
  });
  const ctx: RunContext = {
    req,
    log,
    path: resolved.path,
    args,
    callerEnv,
    scopes,
    cancel: cancel.signal,
    received: () => received,
    closers: [],
  };
  try {
    return await runNested(ctx) ?? await runWithGate(ctx);
  } finally {
    unguard();
    for (const close of ctx.closers) close();
  }
}
