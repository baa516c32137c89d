import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import { inProfile, keyLocation, type Memo, once } from "./doctor_profile.ts";

const silent = () => Promise.reject(new GateError("timeout", "no answer", { status: 504 }));
const refused = () => Promise.reject(new GateError("upstream", "403", { status: 403 }));

Deno.test("once(): one call per key, shared by every caller, errors included", async () => {
  const memo: Memo<number> = { answers: new Map(), stopOnSilence: true };
  let calls = 0;
  const f = () => Promise.resolve(++calls);
  const [a, b] = await Promise.all([once(memo, "x", f), once(memo, "x", f)]);
  assert.deepEqual([a, b, calls], [{ value: 1 }, { value: 1 }, 1]);
  const r1 = await once(memo, "y", refused);
  assert.ok(r1 && "error" in r1);
  // A verdict (403/404) is about that account only: the next key is still asked.
  assert.deepEqual(await once(memo, "z", f), { value: 2 });
});

Deno.test("once(): after a call without a verdict, new keys are not called (with stopOnSilence)", async () => {
  const memo: Memo<number> = { answers: new Map(), stopOnSilence: true };
  assert.ok("error" in (await once(memo, "a", silent))!);
  let called = false;
  assert.equal(await once(memo, "b", () => Promise.resolve((called = true, 1))), undefined);
  assert.equal(called, false);
  assert.equal(memo.unanswered, "a");
  // Without stopOnSilence (no profiles) every account is still asked, as before profiles.
  const plain: Memo<number> = { answers: new Map(), stopOnSilence: false };
  await once(plain, "a", silent);
  assert.deepEqual(await once(plain, "b", () => Promise.resolve(7)), { value: 7 });
});

Deno.test("inProfile() and keyLocation(): named profiles only; a key is fixed where it is set", () => {
  const r = { id: "x", status: "PASS" as const, message: "m" };
  assert.equal(inProfile({ name: "default", named: false }, r), r);
  assert.deepEqual(inProfile({ name: "web", named: true }, r), {
    ...r,
    message: "profile web: m",
    profile: "web",
  });
  const config = {
    config_path: "/c.toml",
    profiles: [{ name: "web", values: { service_account: "a@b" } }],
  };
  const web = { name: "web", named: true };
  assert.equal(keyLocation(config, web, "service_account"), "[profiles.web] in /c.toml");
  assert.equal(
    keyLocation(config, web, "prod_service_account"),
    "/c.toml (top level, inherited by [profiles.web])",
  );
  assert.equal(
    keyLocation(config, { name: "default", named: false }, "service_account"),
    "/c.toml",
  );
});
