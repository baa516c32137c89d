/**
 * A prod session's lease: the answer to `POST /session` is a stream that
 * stays open from the request until with-prod ends, and the session lives
 * only as long as that stream.
 *
 * Why a streamed answer: with-prod learns at once that the request is
 * pending (and when it is decided), and the gate's connection loop
 * (shared/http1/serve.ts) cancels the stream as soon as the client's
 * connection ends (EOF or reset, noticed by a read kept pending while the
 * stream runs; measured in bench/lease.ts). A failed keep-alive write every
 * {@linkcode LEASE_KEEPALIVE_MS} is the backstop. So the stream is answered
 * before anyone is asked: no lease, no approval.
 */
import { GateError, isGateError } from "../shared/errors.ts";
import { streamingResponse } from "../shared/http1/wire.ts";
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

/** An error as the lease's last event (sanitised; unexpected errors say nothing more). */
function errorEvent(err: unknown, log: Logger): LeaseEvent {
  if (!(err instanceof GateError)) {
    log.error("unexpected error", { error: String(err) });
  }
  const e = err instanceof GateError
    ? err
    : new GateError("internal", "internal error; see the gate's log");
  return {
    event: "error",
    error: sanitizeMessage(e.message, 1000),
    code: e.code,
    ...(e.retryAfterSeconds === undefined ? {} : { retry_after_seconds: e.retryAfterSeconds }),
  };
}

/**
 * One lease: its stream, the session it holds once approved, and its timers.
 * Every way it can end goes through {@linkcode finish} (the gate ends it) or
 * {@linkcode cancel} (the client left).
 */
class Lease {
  readonly #lost = new AbortController();
  readonly #approval: AbortSignal;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #done = false;
  #sessionId: string | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(readonly req: ParsedProdRequest, readonly deps: LeaseDeps) {
    this.#approval = deps.signal
      ? AbortSignal.any([this.#lost.signal, deps.signal])
      : this.#lost.signal;
  }

  #send(event?: LeaseEvent): void {
    if (this.#done) return;
    try {
      this.#controller.enqueue(event ? encoder.encode(`${JSON.stringify(event)}\n`) : KEEPALIVE);
    } catch { /* cancelled meanwhile: cancel() handles it */ }
  }

  #stopTimers(): void {
    clearInterval(this.#timer);
    this.deps.signal?.removeEventListener("abort", this.#onStop);
  }

  /** The gate ends the lease (decision refused, session over, gate stopping). */
  #finish(event?: LeaseEvent): void {
    this.#send(event);
    if (this.#done) return;
    this.#done = true;
    this.#stopTimers();
    try {
      this.#controller.close();
    } catch { /* already cancelled */ }
  }

  #revoke(reason: string): void {
    const id = this.#sessionId;
    this.#sessionId = undefined;
    if (id === undefined) return;
    try {
      this.deps.prod.revokeSession(id, reason);
    } catch (err) {
      // Already revoked by DELETE, or expired: nothing left to end.
      if (!isGateError(err, "session_not_found")) {
        this.deps.log.error("could not revoke a prod session", { error: String(err) });
      }
    }
  }

  // Arrow properties: handed to addEventListener and setInterval as they are.
  readonly #onStop = (): void => {
    this.#revoke(REVOKED_GATE_STOPPING);
    this.#finish({ event: "ended", reason: "the gate is stopping" });
  };

  readonly #tick = (): void => {
    if (this.#sessionId !== undefined && !this.deps.prod.isOpen(this.#sessionId)) {
      this.#sessionId = undefined;
      this.#finish({ event: "ended", reason: "revoked or expired" });
      return;
    }
    // A write to a closed socket fails, and Deno cancels the stream: the backstop.
    this.#send();
  };

  async #decide(): Promise<void> {
    try {
      const s = await this.deps.prod.openSession(this.req, this.#approval, (message) => {
        // The lease's holder hears what it waits for ("a teammate must approve …").
        if (!this.#done) this.#send({ event: "progress", message: sanitizeMessage(message, 300) });
      });
      this.#sessionId = s.session_id;
      // Approved in the instant the lease was lost (or the gate began to
      // stop): nobody holds the lease, so the session must not stay.
      if (this.#done) this.#revoke(this.#lost.signal.aborted ? LEASE_LOST : REVOKED_GATE_STOPPING);
      else this.#send({ event: "session", ...s });
    } catch (err) {
      this.#finish(errorEvent(err, this.deps.log));
    }
  }

  /** The stream starts: `pending` at once, keep-alives, then the decision. */
  start(c: ReadableStreamDefaultController<Uint8Array>): void {
    this.#controller = c;
    this.#send({ event: "pending" });
    this.#timer = setInterval(this.#tick, this.deps.keepAliveMs ?? LEASE_KEEPALIVE_MS);
    if (this.deps.signal?.aborted) queueMicrotask(this.#onStop);
    else this.deps.signal?.addEventListener("abort", this.#onStop, { once: true });
    void this.#decide();
  }

  /** The client closed its end (or died): withdraw the request, end the session. */
  cancel(): void {
    if (this.#done) return;
    this.#done = true;
    this.#stopTimers();
    this.#lost.abort(new GateError("timeout", "the session's lease was lost"));
    this.#revoke(LEASE_LOST);
  }
}

/**
 * Asks the human for `req` and answers with the lease stream (see
 * {@linkcode LeaseEvent}): `pending` at once, then `session` or `error`,
 * keep-alives while the session lasts, `ended` when the gate ends it.
 */
export function leasedSession(req: ParsedProdRequest, deps: LeaseDeps): Response {
  const lease = new Lease(req, deps);
  const body = new ReadableStream<Uint8Array>({
    start: (c) => lease.start(c),
    cancel: () => lease.cancel(),
  });
  return streamingResponse(body, HEADERS);
}
