import assert from "node:assert/strict";
import { heldPermissions, mapLimit } from "./inspect.ts";

Deno.test("mapLimit() keeps order and never exceeds its limit", async () => {
  let inFlight = 0;
  let most = 0;
  const out = await mapLimit(Array.from({ length: 50 }, (_, i) => i), 8, async (i) => {
    inFlight++;
    most = Math.max(most, inFlight);
    await new Promise((r) => setTimeout(r, (i * 7) % 5));
    inFlight--;
    return i * 2;
  });
  assert.deepEqual(out, Array.from({ length: 50 }, (_, i) => i * 2));
  assert.equal(most, 8);
  assert.deepEqual(await mapLimit([], 8, () => Promise.resolve(1)), []);
});

Deno.test("heldPermissions() reads Google's answer; an empty answer holds nothing", () => {
  assert.deepEqual([...heldPermissions({ permissions: ["a.b.c", 3] })], ["a.b.c"]);
  assert.equal(heldPermissions({}).size, 0);
  assert.equal(heldPermissions(null).size, 0);
});
