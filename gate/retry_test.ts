import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import { isRetryable, withRetry } from "./retry.ts";

function clock(): { now: () => number; sleep: (ms: number) => Promise<void>; slept: number[] } {
  let t = 0;
  const slept: number[] = [];
  return {
    now: () => t,
    sleep: (ms) => {
      slept.push(ms);
      t += ms;
      return Promise.resolve();
    },
    slept,
  };
}

Deno.test("isRetryable() covers 429, 5xx and timeouts only", () => {
  assert.ok(isRetryable(new GateError("upstream", "x", { status: 429 })));
  assert.ok(isRetryable(new GateError("upstream", "x", { status: 502 })));
  assert.ok(isRetryable(new GateError("timeout", "x")));
  assert.ok(!isRetryable(new GateError("upstream", "x", { status: 403 })));
  assert.ok(!isRetryable(new GateError("credentials_expired", "x")));
  assert.ok(!isRetryable(new Error("x")));
});

Deno.test("withRetry() retries transient failures with jittered, growing backoff", async () => {
  const c = clock();
  let n = 0;
  const v = await withRetry(() => {
    n++;
    if (n < 3) return Promise.reject(new GateError("upstream", "503", { status: 502 }));
    return Promise.resolve("ok");
  }, { deadlineMs: 10_000, baseDelayMs: 100, random: () => 1, now: c.now, sleep: c.sleep });
  assert.equal(v, "ok");
  assert.deepEqual(c.slept, [100, 200]);
});

Deno.test("withRetry() gives up at once on a permanent error", async () => {
  const c = clock();
  let n = 0;
  await assert.rejects(
    withRetry(() => {
      n++;
      return Promise.reject(new GateError("upstream", "denied", { status: 403 }));
    }, { deadlineMs: 10_000, now: c.now, sleep: c.sleep }),
    /denied/,
  );
  assert.equal(n, 1);
});

Deno.test("withRetry() stops before the deadline and after maxAttempts", async () => {
  const c = clock();
  let n = 0;
  await assert.rejects(
    withRetry((remaining) => {
      n++;
      assert.ok(remaining > 0);
      return Promise.reject(new GateError("timeout", "slow"));
    }, { deadlineMs: 1000, baseDelayMs: 400, random: () => 1, now: c.now, sleep: c.sleep }),
    /slow/,
  );
  // 400 ms then 800 ms would pass the 1 s deadline: only one backoff.
  assert.equal(n, 2);
  n = 0;
  await assert.rejects(
    withRetry(() => {
      n++;
      return Promise.reject(new GateError("timeout", "slow"));
    }, { deadlineMs: 1e9, maxAttempts: 3, random: () => 0, now: c.now, sleep: c.sleep }),
  );
  assert.equal(n, 3);
});
