import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import { allowOnly, parseIntParam, parseScopes, readJsonBody, validateProject } from "./params.ts";
import { parseProdRequest } from "./prod_request.ts";

const isBad = (e: unknown): boolean => e instanceof GateError && e.code === "bad_request";

Deno.test("parseScopes() defaults to cloud-platform, splits, dedupes and validates", () => {
  assert.deepEqual(parseScopes(null), ["https://www.googleapis.com/auth/cloud-platform"]);
  assert.deepEqual(parseScopes("a,b a,,b"), ["a", "b"]);
  assert.throws(() => parseScopes("a<b"), isBad);
  assert.throws(() => parseScopes(Array.from({ length: 51 }, (_, i) => `s${i}`).join(",")), isBad);
});

Deno.test("parseIntParam() names the parameter and the range", () => {
  const r = { min: 60, max: 3600 };
  assert.equal(parseIntParam("ttl_seconds", null, r, 3600), 3600);
  assert.equal(parseIntParam("ttl_seconds", "60", r, 3600), 60);
  for (const bad of ["59", "3601", "-1", "1e3", "abc", "9999999999"]) {
    assert.throws(
      () => parseIntParam("ttl_seconds", bad, r, 3600),
      /ttl_seconds must be an integer from 60 to 3600/,
    );
  }
});

Deno.test("allowOnly() refuses unknown and repeated parameters", () => {
  assert.throws(() => allowOnly(new URLSearchParams("x=1"), ["a"]), /unknown query parameter "x"/);
  assert.throws(() => allowOnly(new URLSearchParams("a=1&a=2"), ["a"]), /given twice/);
  allowOnly(new URLSearchParams("a=1"), ["a"]);
});

Deno.test("validateProject() accepts project ids, refuses paths", () => {
  assert.equal(validateProject("demo-project"), "demo-project");
  assert.equal(validateProject("example.com:proj"), "example.com:proj");
  assert.throws(() => validateProject("../etc"), isBad);
  assert.throws(() => validateProject("UPPER"), isBad);
});

Deno.test("readJsonBody() bounds size and refuses invalid UTF-8, non-JSON and non-objects", async () => {
  const req = (
    body: BodyInit,
    headers: Record<string, string> = { "content-type": "application/json" },
  ): Request => new Request("http://x/", { method: "POST", body, headers });
  assert.deepEqual(await readJsonBody(req('{"a":1}')), { a: 1 });
  assert.deepEqual(await readJsonBody(req("")), {});
  await assert.rejects(readJsonBody(req("x".repeat(100)), 10), /larger than 10 bytes/);
  await assert.rejects(readJsonBody(req(new Uint8Array([0x22, 0xff, 0x22]))), /not valid UTF-8/);
  await assert.rejects(readJsonBody(req("{")), /not valid JSON/);
  await assert.rejects(readJsonBody(req("[1]")), /must be a JSON object/);
  await assert.rejects(
    readJsonBody(req("{}", { "content-type": "text/plain" })),
    /content-type must be application\/json/,
  );
});

Deno.test("parseProdRequest() redacts the command, caps the ttl and refuses bad fields", () => {
  const limits = { maxTtlSeconds: 3600, defaultProject: "dflt" };
  const r = parseProdRequest({
    command: ["curl", "-H", "Authorization: Bearer abc.def", "--password", "hunter2"],
    ttl_seconds: 99999,
  }, limits);
  assert.equal(r.ttlSeconds, 3600);
  assert.equal(r.project, "dflt");
  assert.ok(!r.command!.join(" ").includes("hunter2"));
  assert.ok(!r.command!.join(" ").includes("abc.def"));
  assert.deepEqual(r.scopes, ["https://www.googleapis.com/auth/cloud-platform"]);
  const many = parseProdRequest({ command: Array.from({ length: 600 }, () => "x") }, limits);
  assert.equal(many.command!.length, 512);
  assert.ok(many.notes.length > 0, "caps are noted for the human");
  assert.throws(() => parseProdRequest({ command: [] }, limits), isBad);
  assert.throws(() => parseProdRequest({ reason: 5 }, limits), isBad);
  assert.throws(() => parseProdRequest({ ttl_seconds: "60" }, limits), isBad);
  assert.throws(() => parseProdRequest({ scopes: "a" }, limits), isBad);
  assert.throws(() => parseProdRequest({ extra: true }, limits), /unknown field "extra"/);
  const reason = parseProdRequest({ reason: "fix\u202e bug\n" }, limits);
  assert.equal(reason.reason, "fix bug");
});
