import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import { createSessionStore, validateSessionId } from "./sessions.ts";

const INFO = { email: "e@x", project: "p", scopes: ["s"], command: undefined };

Deno.test("sessions: 256-bit base64url ids, found only by the exact id, until they expire", () => {
  let now = 1000;
  const store = createSessionStore({ now: () => now });
  const s = store.create(INFO, 300);
  assert.match(s.id, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(s.prefix, s.id.slice(0, 8));
  assert.equal(s.expiresAt, 1000 + 300_000);
  assert.equal(store.find(s.id), s);
  const wrong = s.id.slice(0, 42) + (s.id.endsWith("A") ? "B" : "A");
  assert.equal(store.find(wrong), undefined, "same prefix, one character off");
  now += 300_000;
  assert.equal(store.find(s.id), undefined, "expired");
  assert.equal(store.size, 0);
});

Deno.test("sessions: revoke ends a session once", () => {
  const store = createSessionStore();
  const s = store.create(INFO, 300);
  assert.equal(store.revoke(s.id)?.id, s.id);
  assert.equal(store.find(s.id), undefined);
  assert.equal(store.revoke(s.id), undefined);
});

Deno.test("sessions: prefix collisions are told apart by the full id", () => {
  let n = 0;
  // Two ids sharing their first 8 characters.
  const store = createSessionStore({
    randomBytes: (len) => {
      const b = new Uint8Array(len);
      b[len - 1] = n++;
      return b;
    },
  });
  const a = store.create(INFO, 300);
  const b = store.create(INFO, 300);
  assert.equal(a.prefix, b.prefix);
  assert.notEqual(a.id, b.id);
  assert.equal(store.find(b.id), b);
  store.revoke(a.id);
  assert.equal(store.find(b.id), b);
});

Deno.test("sessions: the number of open sessions is bounded", () => {
  const store = createSessionStore({ maxSessions: 2 });
  store.create(INFO, 300);
  store.create(INFO, 300);
  assert.throws(
    () => store.create(INFO, 300),
    (e) => e instanceof GateError && e.code === "rate_limited",
  );
});

Deno.test("validateSessionId() refuses anything not shaped like an id", () => {
  assert.throws(() => validateSessionId(null), /required/);
  assert.throws(() => validateSessionId("short"), /not a session id/);
  assert.throws(() => validateSessionId("a".repeat(42) + "!"), /not a session id/);
  assert.equal(validateSessionId("a".repeat(43)), "a".repeat(43));
});
