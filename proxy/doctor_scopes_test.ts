import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import { doctorReadPaths, parseProbeHosts } from "./doctor_scopes.ts";

Deno.test("parseProbeHosts() adds port 80, keeps explicit ports, drops duplicates", () => {
  assert.deepEqual(
    parseProbeHosts("169.254.169.254, metadata.google.internal,127.0.0.1:9,169.254.169.254:80"),
    [
      "169.254.169.254:80",
      "metadata.google.internal:80",
      "127.0.0.1:9",
    ],
  );
});

Deno.test("parseProbeHosts() refuses URLs, paths, bad ports and more than 8 hosts", () => {
  for (
    const bad of [
      "http://x",
      "x/y",
      "x:0",
      "x:70000",
      "-x",
      Array(9).fill(0).map((_, i) => `h${i}`).join(","),
    ]
  ) {
    assert.throws(
      () => parseProbeHosts(bad),
      (e: unknown) => e instanceof GateError && e.code === "config",
      bad,
    );
  }
});

Deno.test("doctorReadPaths() names the socket dir, HOME and gcloud's dir, never /", () => {
  const env = (m: Record<string, string>) => (n: string) => m[n];
  assert.deepEqual(doctorReadPaths("/run/gcp-gate/gate.sock", env({ HOME: "/home/u" })), [
    "/run/gcp-gate",
    "/home/u",
    "/home/u/.config/gcloud",
  ]);
  assert.deepEqual(
    doctorReadPaths("/run/g/gate.sock", env({ HOME: "/", CLOUDSDK_CONFIG: "/cfg" })),
    ["/run/g", "/cfg"],
  );
});
