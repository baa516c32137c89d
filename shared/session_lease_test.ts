import assert from "node:assert/strict";
import { GateError, isGateError } from "./errors.ts";
import { LEASE_HEADER, type SessionResponse } from "./protocol.ts";
import { createChunkedDecoder, openSessionLease } from "./session_lease.ts";

const SESSION: SessionResponse = {
  session_id: "S".repeat(43),
  expires_in: 600,
  project: "p",
  scopes: ["https://www.googleapis.com/auth/cloud-platform"],
  email: "eng@example.com",
  service_account: "prod@p.iam.gserviceaccount.com",
  token_ttl_seconds: 600,
};

Deno.test("createChunkedDecoder() yields the data whatever the read boundaries", () => {
  const wire = new TextEncoder().encode(
    "5\r\nhello\r\n1;ext=1\r\n\n\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n",
  );
  for (let step = 1; step <= wire.length; step++) {
    const decode = createChunkedDecoder();
    let out = "";
    for (let i = 0; i < wire.length; i += step) {
      for (const part of decode(wire.subarray(i, i + step))) out += new TextDecoder().decode(part);
    }
    assert.equal(out, "hello\n0123456789abcdef", `read size ${step}`);
  }
  assert.throws(() => createChunkedDecoder()(new TextEncoder().encode("zz\r\n")), GateError);
});

/** A gate stand-in on a Unix socket in a fresh dir; `handler` answers POST /session. */
async function withServer(
  handler: (req: Request) => Response | Promise<Response>,
  fn: (path: string) => Promise<void>,
): Promise<void> {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/gate.sock`;
  const ac = new AbortController();
  const server = Deno.serve({ path, signal: ac.signal, onListen: () => {} }, handler);
  try {
    await fn(path);
  } finally {
    ac.abort();
    await server.finished;
    Deno.removeSync(dir, { recursive: true });
  }
}

function options(path: string) {
  return {
    socketPath: path,
    request: { command: ["x".repeat(5000)] },
    timeoutMs: 5000,
    unreachable: (_p: string, err: unknown) => new GateError("gate_unreachable", String(err)),
    knownCode: (c: string) => c === "denied" || c === "rate_limited",
  };
}

const enc = new TextEncoder();
const NDJSON = { headers: { "content-type": "application/x-ndjson" } };

Deno.test("openSessionLease() sends the lease header, skips keep-alives, holds the lease until closed", async () => {
  let cancelled!: () => void;
  const gone = new Promise<void>((r) => (cancelled = r));
  let header: string | null = null;
  await withServer(async (req) => {
    header = req.headers.get(LEASE_HEADER);
    await req.text();
    return new Response(
      new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(enc.encode('{"event":"pending"}\n'));
          c.enqueue(enc.encode("\n"));
          c.enqueue(enc.encode(`${JSON.stringify({ event: "session", ...SESSION })}\n`));
        },
        cancel: () => cancelled(),
      }),
      NDJSON,
    );
  }, async (path) => {
    const lease = await openSessionLease(options(path));
    assert.equal(header, "1");
    assert.deepEqual(lease.session, SESSION);
    lease.close();
    assert.deepEqual(await lease.ended, { kind: "closed", detail: "closed by with-prod" });
    await gone; // the gate saw the lease end
  });
});

Deno.test("openSessionLease() reports the gate ending the session, and a lost connection", async () => {
  await withServer(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(enc.encode(`${JSON.stringify({ event: "session", ...SESSION })}\n`));
          setTimeout(() => {
            c.enqueue(enc.encode('{"event":"ended","reason":"revoked or expired"}\n'));
            c.close();
          }, 20);
        },
      }),
      NDJSON,
    ), async (path) => {
    const lease = await openSessionLease(options(path));
    assert.deepEqual(await lease.ended, {
      kind: "ended",
      detail: "the gate ended the session (revoked or expired)",
    });
  });
});

Deno.test("openSessionLease() turns refusals into GateErrors (JSON answer or error event)", async () => {
  await withServer(
    () => Response.json({ error: "no lease", code: "protocol_mismatch" }, { status: 400 }),
    async (path) => {
      const err = await openSessionLease(options(path)).catch((e) => e);
      assert.ok(isGateError(err, "upstream"), "unknown codes become upstream");
      assert.equal(err.message, "no lease");
    },
  );
  await withServer(
    () =>
      new Response(
        '{"event":"pending"}\n{"event":"error","error":"denied by a human","code":"denied"}\n',
        NDJSON,
      ),
    async (path) => {
      const err = await openSessionLease(options(path)).catch((e) => e);
      assert.ok(isGateError(err, "denied"), String(err));
      assert.equal(err.message, "denied by a human");
    },
  );
  // An older gate answers the session as plain JSON after the decision: refused, not waited on.
  await withServer(() => Response.json(SESSION), async (path) => {
    const err = await openSessionLease(options(path)).catch((e) => e);
    assert.ok(isGateError(err, "protocol_mismatch"), String(err));
  });
  await withServer(() => new Response('{"event":"pending"}\n', NDJSON), async (path) => {
    const err = await openSessionLease(options(path)).catch((e) => e);
    assert.ok(isGateError(err, "gate_unreachable"), String(err));
  });
});

Deno.test("openSessionLease() withdraws on abort", async () => {
  await withServer(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        start: (c) => c.enqueue(enc.encode('{"event":"pending"}\n')),
      }),
      NDJSON,
    ), async (path) => {
    const ac = new AbortController();
    const asking = openSessionLease({ ...options(path), signal: ac.signal }).catch((e) => e);
    setTimeout(() => ac.abort(new Error("cancelled by the user")), 30);
    assert.match(String(await asking), /cancelled by the user/);
  });
});
