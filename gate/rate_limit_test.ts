import assert from "node:assert/strict";
import { isGateError } from "../shared/errors.ts";
import { createApprovalRateLimiter } from "./rate_limit.ts";

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function refusal(fn: () => unknown): { message: string; retry: number | undefined } {
  try {
    fn();
  } catch (err) {
    assert.ok(isGateError(err, "rate_limited"), `expected rate_limited, got ${err}`);
    assert.equal(err.status, 429);
    return { message: err.message, retry: err.retryAfterSeconds };
  }
  throw new Error("expected a rate_limited refusal");
}

Deno.test("rate limiter admits one pending approval at a time", () => {
  const c = clock();
  const rl = createApprovalRateLimiter({ cooldownSeconds: 5, maxPerMinute: 10, now: c.now });
  const p = rl.acquire("aaa");
  p.setDeadline(c.now() + 42_000);
  c.advance(2000);
  const r = refusal(() => rl.acquire("bbb"));
  assert.match(r.message, /an approval is already pending \(request aaa, asked 2 s ago\)/);
  assert.equal(r.retry, 40);
  p.release("approved");
  rl.acquire("ccc").release("approved");
});

Deno.test("rate limiter refuses during the cooldown after a denial", () => {
  const c = clock();
  const rl = createApprovalRateLimiter({ cooldownSeconds: 5, maxPerMinute: 10, now: c.now });
  rl.acquire("b").release("denied");
  c.advance(1500);
  const r = refusal(() => rl.acquire("c"));
  assert.match(r.message, /denied.*retry in 4 s/);
  assert.equal(r.retry, 4);
  c.advance(3500);
  rl.acquire("d").release("approved");
});

Deno.test("rate limiter refuses during the cooldown after a cancel too (no dialog flashing)", () => {
  const c = clock();
  const rl = createApprovalRateLimiter({ cooldownSeconds: 5, maxPerMinute: 10, now: c.now });
  rl.acquire("a").release("cancelled");
  c.advance(1000);
  const r = refusal(() => rl.acquire("b"));
  assert.match(r.message, /withdrawn before a decision.*retry in 4 s/);
  c.advance(4000);
  rl.acquire("c").release("approved");
  // No cooldown after an approval.
  rl.acquire("d").release("approved");
});

Deno.test("rate limiter: 'already pending' tells the caller to deny a request it did not make", () => {
  const rl = createApprovalRateLimiter({ cooldownSeconds: 5, maxPerMinute: 10 });
  rl.acquire("aaaa1111");
  const r = refusal(() => rl.acquire("bbbb2222"));
  assert.match(r.message, /if you did not make it, deny it on the host \(gcp-gate deny aaaa1111/);
});

Deno.test("rate limiter caps admitted requests per sliding minute", () => {
  const c = clock();
  const rl = createApprovalRateLimiter({ cooldownSeconds: 0, maxPerMinute: 3, now: c.now });
  for (const id of ["a", "b", "c"]) {
    rl.acquire(id).release("approved");
    c.advance(10_000);
  }
  const r = refusal(() => rl.acquire("d"));
  assert.match(r.message, /at most 3 per minute/);
  assert.equal(r.retry, 30);
  // Refusals are not counted: a client retrying in a loop does not lock itself out.
  c.advance(30_000);
  rl.acquire("e").release("approved");
});

Deno.test("rate limiter: releasing twice or late does not free someone else's slot", () => {
  const rl = createApprovalRateLimiter({ cooldownSeconds: 0, maxPerMinute: 10 });
  const a = rl.acquire("a");
  a.release("approved");
  const b = rl.acquire("b");
  a.release("approved");
  refusal(() => rl.acquire("c"));
  b.release("approved");
});

Deno.test("reconfigure(): a longer cooldown extends the running one from the denial; a shorter one keeps its end", () => {
  const c = clock();
  const rl = createApprovalRateLimiter({ cooldownSeconds: 60, maxPerMinute: 10, now: c.now });
  rl.acquire("a").release("denied");
  c.advance(10_000);
  rl.reconfigure({ cooldownSeconds: 300, maxPerMinute: 10 });
  const longer = refusal(() => rl.acquire("b"));
  assert.equal(longer.retry, 290, "measured from the denial, with the new length");
  assert.match(longer.message, /refused for 300 s after a denial/);
  // Shortened again: the running end stays (the later of the two).
  rl.reconfigure({ cooldownSeconds: 5, maxPerMinute: 10 });
  assert.equal(refusal(() => rl.acquire("c")).retry, 290);
  c.advance(290_000);
  // Over: the next denial cools down for the new, shorter length.
  rl.acquire("d").release("cancelled");
  c.advance(1000);
  const next = refusal(() => rl.acquire("e"));
  assert.equal(next.retry, 4);
  assert.match(next.message, /withdrawn before a decision; new requests are refused for 5 s/);
});

Deno.test("reconfigure(): the pending request and the last minute's requests carry over under the new cap", () => {
  const c = clock();
  const rl = createApprovalRateLimiter({ cooldownSeconds: 0, maxPerMinute: 10, now: c.now });
  for (const id of ["a", "b", "c", "d"]) {
    rl.acquire(id).release("approved");
    c.advance(5000);
  }
  const waiting = rl.acquire("e");
  rl.reconfigure({ cooldownSeconds: 0, maxPerMinute: 10 });
  assert.match(refusal(() => rl.acquire("f")).message, /already pending \(request e,/);
  // The permit taken before the reload still frees the slot.
  waiting.release("approved");
  // 5 requests in the window (at 0, 5, 10, 15, 20 s; now 20 s), the cap drops to 2:
  // refused until only one is left, i.e. until the one at 15 s leaves the window.
  rl.reconfigure({ cooldownSeconds: 0, maxPerMinute: 2 });
  const r = refusal(() => rl.acquire("g"));
  assert.match(r.message, /at most 2 per minute/);
  assert.equal(r.retry, 55);
  c.advance(54_000);
  refusal(() => rl.acquire("h"));
  c.advance(1000);
  rl.acquire("i").release("approved");
});

Deno.test("reconfigure(): no running cooldown, no new one (a reload alone never cools down)", () => {
  const c = clock();
  const rl = createApprovalRateLimiter({ cooldownSeconds: 5, maxPerMinute: 10, now: c.now });
  rl.acquire("a").release("denied");
  c.advance(6000);
  rl.reconfigure({ cooldownSeconds: 600, maxPerMinute: 10 });
  rl.acquire("b").release("approved");
});
