import assert from "node:assert/strict";
import { basename, dirname } from "./path.ts";

Deno.test("dirname() and basename() split absolute paths", () => {
  assert.equal(dirname("/run/gcp-gate/gate.sock"), "/run/gcp-gate");
  assert.equal(dirname("/gate.sock"), "/");
  assert.equal(basename("/run/gcp-gate/gate.sock"), "gate.sock");
});
