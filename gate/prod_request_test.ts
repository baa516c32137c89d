import assert from "node:assert/strict";
import { isGateError } from "../shared/errors.ts";
import { parseProdRequest, parseRefusalReport } from "./prod_request.ts";

const limits = { maxTtlSeconds: 3600, defaultProject: undefined };

Deno.test("parseProdRequest() keeps a well-formed approval code", () => {
  assert.equal(parseProdRequest({ code: "K7P-QX2" }, limits).code, "K7P-QX2");
  assert.equal(parseProdRequest({}, limits).code, undefined);
});

Deno.test("parseProdRequest() refuses a code that is not ABC-DEF of the code alphabet", () => {
  for (
    const code of [5, "", "K7PQX2", "k7p-qx2", "K7P-QX20", "O0I-1L5", "K7P-QX2\nCode: X", "AAA-AA"]
  ) {
    assert.throws(
      () => parseProdRequest({ code }, limits),
      (e: unknown) => isGateError(e, "bad_request") && /approval code/.test(e.message),
      JSON.stringify(code),
    );
  }
});

Deno.test("parseRefusalReport() bounds and sanitises what with-prod reports", () => {
  assert.deepEqual(
    parseRefusalReport({ pid: 12, command: "cu\u202erl", reason: "not\na descendant" }),
    { pid: 12, command: "curl", reason: "not a descendant" },
  );
  assert.deepEqual(parseRefusalReport({ pid: null, command: null, reason: "gone" }), {
    pid: null,
    command: null,
    reason: "gone",
  });
  for (
    const bad of [
      { pid: -1, command: null, reason: "x" },
      { pid: 1.5, command: null, reason: "x" },
      { pid: 1, command: "x".repeat(65), reason: "x" },
      { pid: 1, command: null, reason: "x".repeat(201) },
      { pid: 1, command: null },
      { pid: 1, command: null, reason: "x", extra: true },
    ]
  ) {
    assert.throws(
      () => parseRefusalReport(bad),
      (err: unknown) => isGateError(err, "bad_request"),
      JSON.stringify(bad),
    );
  }
});

Deno.test("parseProdRequest() shows the caller's host as stated, sanitised and capped", () => {
  assert.equal(
    parseProdRequest({ host: "build-vm-3", via: "ssh" }, limits).from,
    "build-vm-3 via ssh",
  );
  assert.equal(parseProdRequest({ host: "build-vm-3" }, limits).from, "build-vm-3");
  assert.equal(parseProdRequest({}, limits).from, undefined);
  // A line break or escape cannot forge another dialog line; length is bounded.
  assert.equal(parseProdRequest({ host: "vm\nCode: K7P-QX2" }, limits).from, "vm?Code??K7P-QX2");
  const long = parseProdRequest({ host: "a".repeat(100_000) }, limits).from ?? "";
  assert.equal(long, `${"a".repeat(64)}…`);
  for (const bad of [{ host: 5 }, { via: "tcp" }, { host: "x", via: true }]) {
    assert.throws(
      () => parseProdRequest(bad, limits),
      (e: unknown) => isGateError(e, "bad_request"),
    );
  }
});
