/**
 * A prod session's lease: the answer to `POST /session` is a stream that
 * stays open from the request until with-prod ends, and the session lives
 * only as long as that stream.
 *
 * Why a streamed answer, not the request's disconnect signal: Deno's
 * `req.signal` does not fire when a client leaves while the handler is still
 * working on a request whose body spanned more than one read (a long
 * command), so a cancelled with-prod left its dialog up and its queue entry
 * approvable. Once an answer is streaming, Deno notices the client's EOF and
 * cancels the stream within milliseconds (measured 1–6 ms over the Unix
 * socket, with bodies of 100 B to 60 KB, sent whole or in pieces); a failed
 * keep-alive write every {@linkcode LEASE_KEEPALIVE_MS} is the backstop. So
 * the stream is answered before anyone is asked: no lease, no approval.
 */
import { GateError, isGateError } from "../shared/errors.ts";
import type { Logger } from "../shared/log.ts";
import { LEASE_KEEPALIVE_MS, type LeaseEvent } from "../shared/protocol.ts";
import { sanitizeMessage } from "../shared/redact.ts";
import { type ProdService, REVOKED_GATE_STOPPING } from "./prod.ts";
import type { ParsedProdRequest } from "./prod_request.ts";

/** Dependencies of {@linkcode leasedSession}. */
export interface LeaseDeps {
  prod: ProdService;
  log: Logger;
  /** Aborts when the gate stops: pending approvals end, open sessions are revoked. */
  signal?: AbortSignal | undefined;
  keepAliveMs?: number;
}

/** The audit reason of a session whose lease ended without DELETE. */
export const LEASE_LOST = "lease lost";

const HEADERS: Readonly<Record<string, string>> = {
  "content-type": "application/x-ndjson",
  "cache-control": "no-store",
};
const encoder = new TextEncoder();
const KEEPALIVE = encoder.encode("\n");

/**
 * Asks the human for `req` and answers with the lease stream (see
 * {@linkcode LeaseEvent}): `pending` at once, then `session` or `error`,
 * keep-alives while the session lasts, `ended` when the gate ends it.
 */
export function leasedSession(req: ParsedProdRequest, deps: LeaseDeps): Response {
  const lost = new AbortController();
  const approval = deps.signal ? AbortSignal.any([lost.signal, deps.signal]) : lost.signal;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let done = false;
  let sessionId: string | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;

  function send(event?: LeaseEvent): void {
    if (done) return;
    try {
      controller.enqueue(event ? encoder.encode(`${JSON.stringify(event)}\n`) : KEEPALIVE);
    } catch { /* cancelled meanwhile: cancel() handles it */ }
  }

  function stopTimers(): void {
    clearInterval(timer);
    deps.signal?.removeEventListener("abort", onStop);
  }

  /** The gate ends the lease (decision refused, session over, gate stopping). */
  function finish(event?: LeaseEvent): void {
    send(event);
    if (done) return;
    done = true;
    stopTimers();
    try {
      controller.close();
    } catch { /* already cancelled */ }
  }

  function revoke(reason: string): void {
    const id = sessionId;
    sessionId = undefined;
    if (id === undefined) return;
    try {
      deps.prod.revokeSession(id, reason);
    } catch (err) {
      // Already revoked by DELETE, or expired: nothing left to end.
      if (!isGateError(err, "session_not_found")) {
        deps.log.error("could not revoke a prod session", { error: String(err) });
      }
    }
  }

  function onStop(): void {
    revoke(REVOKED_GATE_STOPPING);
    finish({ event: "ended", reason: "the gate is stopping" });
  }

  function tick(): void {
    if (sessionId !== undefined && !deps.prod.isOpen(sessionId)) {
      sessionId = undefined;
      finish({ event: "ended", reason: "revoked or expired" });
      return;
    }
    // A write to a closed socket fails, and Deno cancels the stream: the backstop.
    send();
  }

  async function decide(): Promise<void> {
    try {
      const s = await deps.prod.openSession(req, approval, (message) => {
        // The lease's holder hears what it waits for ("a teammate must approve …").
        if (!done) send({ event: "progress", message: sanitizeMessage(message, 300) });
      });
      sessionId = s.session_id;
      // Approved in the instant the lease was lost (or the gate began to
      // stop): nobody holds the lease, so the session must not stay.
      if (done) revoke(lost.signal.aborted ? LEASE_LOST : REVOKED_GATE_STOPPING);
      else send({ event: "session", ...s });
    } catch (err) {
      if (!(err instanceof GateError)) {
        deps.log.error("unexpected error", { error: String(err) });
      }
      const e = err instanceof GateError
        ? err
        : new GateError("internal", "internal error; see the gate's log");
      finish({
        event: "error",
        error: sanitizeMessage(e.message, 1000),
        code: e.code,
        ...(e.retryAfterSeconds === undefined ? {} : { retry_after_seconds: e.retryAfterSeconds }),
      });
    }
  }

  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      send({ event: "pending" });
      timer = setInterval(tick, deps.keepAliveMs ?? LEASE_KEEPALIVE_MS);
      if (deps.signal?.aborted) queueMicrotask(onStop);
      else deps.signal?.addEventListener("abort", onStop, { once: true });
      void decide();
    },
    cancel() {
      // The client closed its end (or died): withdraw the request, end the session.
      if (done) return;
      done = true;
      stopTimers();
      lost.abort(new GateError("timeout", "the session's lease was lost"));
      revoke(LEASE_LOST);
    },
  });
  return new Response(body, { headers: HEADERS });
}
