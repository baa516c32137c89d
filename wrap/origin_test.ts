import assert from "node:assert/strict";
import { callerOrigin } from "./origin.ts";

Deno.test("callerOrigin() names the host and says via ssh inside an ssh session", () => {
  assert.deepEqual(
    callerOrigin({ SSH_CONNECTION: "10.0.0.2 50000 10.0.0.3 22" }, () => "build-vm-3"),
    { host: "build-vm-3", via: "ssh" },
  );
  assert.deepEqual(callerOrigin({}, () => "build-vm-3"), { host: "build-vm-3" });
});

Deno.test("callerOrigin() leaves the host out when the hostname cannot be read", () => {
  assert.deepEqual(
    callerOrigin({}, () => {
      throw new Error("no");
    }),
    {},
  );
});
