import assert from "node:assert/strict";
import { expandTemplate, placeholders } from "./resolve.ts";
import { loadInvocation } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import { GATE_CLI } from "../gate/cli.ts";

Deno.test("expandTemplate() fills placeholders and drops a flag left without scopes", () => {
  const values = { socket_path: ["/run/g.sock"], none: [] as string[], hosts: ["a:443", "b:443"] };
  assert.equal(
    expandTemplate("--allow-net=unix:{socket_path},{hosts},gate:1", values),
    "--allow-net=unix:/run/g.sock,a:443,b:443,gate:1",
  );
  // An empty --allow-read= would mean "everything": the flag must disappear.
  assert.equal(expandTemplate("--allow-read={none}", values), undefined);
  assert.equal(expandTemplate("--allow-all", values), "--allow-all");
});

Deno.test("expandTemplate() refuses values that would split a grant or add a flag line", () => {
  for (const bad of ["/tmp/a,/etc", "/tmp/x\n--allow-all", "/tmp/x\r", "/tmp/\u0000x"]) {
    assert.throws(
      () => expandTemplate("--allow-read={p}", { p: [bad] }),
      (err: unknown) => err instanceof GateError && err.code === "config",
      JSON.stringify(bad),
    );
  }
});

Deno.test("placeholders() lets the gate reach the PAM endpoint it is configured with", () => {
  const inv = (args: string[]) =>
    loadInvocation(GATE_CLI, args, {
      env: (n) => (n === "HOME" ? "/nonexistent-home" : undefined),
      readTextFile: () => undefined,
      cwd: () => "/",
    });
  assert.ok(
    placeholders("gcp-gate", inv([])).endpoint_hosts?.includes(
      "privilegedaccessmanager.googleapis.com:443",
    ),
  );
  const custom = placeholders(
    "gcp-gate",
    inv(["--endpoints-privilegedaccessmanager", "https://pam.psc.example:8443"]),
  );
  assert.ok(custom.endpoint_hosts?.includes("pam.psc.example:8443"));
  assert.ok(!custom.endpoint_hosts?.includes("privilegedaccessmanager.googleapis.com:443"));
});
