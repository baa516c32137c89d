/**
 * A prod request's command is redacted on the gate's event loop. Hostile
 * commands shaped to make backtracking patterns quadratic (a 64 KiB
 * `POST /session` froze the gate for ~4 s) must not stall the cached dev
 * tokens every other container is using.
 */
import assert from "node:assert/strict";
import { createGateClient } from "../shared/gate_client.ts";
import { ADVERSARIAL } from "../shared/testdata/adversarial_argv.ts";
import { QUEUE_PROD_TOML, startStack } from "./_utils.ts";

/** A `POST /session` body just under the gate's 64 KiB limit, one hostile argument. */
function hostileBody(make: (n: number) => string): string {
  const size = (n: number): number => JSON.stringify({ command: ["x", make(n)] }).length;
  // JSON escapes some shapes (a backslash doubles): scale to the encoded size.
  const n = Math.floor(60_000 * (64_000 / size(60_000)));
  return JSON.stringify({ command: ["x", make(n)] });
}

Deno.test("a 64 KiB hostile POST /session does not stall a concurrent cached /token", async () => {
  await using stack = await startStack({ proxy: false, gateToml: QUEUE_PROD_TOML });
  const gate = createGateClient({ socketPath: stack.socketPath });
  const http = Deno.createHttpClient({ proxy: { transport: "unix", path: stack.socketPath } });
  try {
    await gate.token(); // mint once: every later /token is a cache hit
    let posting = true;
    const posts = (async () => {
      try {
        for (const make of Object.values(ADVERSARIAL)) {
          const body = hostileBody(make);
          assert.ok(body.length <= 64 * 1024 && body.length > 60_000, `${body.length}`);
          const res = await fetch("http://gate.invalid/session", {
            method: "POST",
            client: http,
            headers: { "x-gcp-gate-protocol": "1", "content-type": "application/json" },
            body,
            // The first request waits in the approval queue; the rest are rate-limited.
            signal: AbortSignal.timeout(300),
          }).catch(() => undefined);
          await res?.body?.cancel();
        }
      } finally {
        posting = false;
      }
    })();
    let worst = 0;
    let n = 0;
    while (posting || n < 20) {
      const t = performance.now();
      await gate.token();
      worst = Math.max(worst, performance.now() - t);
      n++;
    }
    await posts;
    // Generous bound (a shared, slow machine): before the fix one request
    // alone held the event loop for seconds.
    assert.ok(worst < 500, `a cached /token took ${worst.toFixed(0)} ms during hostile requests`);
  } finally {
    gate.close();
    http.close();
  }
});
