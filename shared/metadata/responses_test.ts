import assert from "node:assert/strict";
import { jsonPayload, textPayload, toResponse } from "./responses.ts";

Deno.test("toResponse() serves a reused payload whole every time, with its headers", async () => {
  const p = jsonPayload({ access_token: "ya29.t1", expires_in: 3599, token_type: "Bearer" });
  for (let i = 0; i < 3; i++) {
    const res = toResponse(p, false);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("metadata-flavor"), "Google");
    assert.equal(res.headers.get("server"), "Metadata Server for VM");
    assert.equal(res.headers.get("content-type"), "application/json");
    assert.equal(res.headers.get("etag"), p.etag);
    // Each answer is its own body: reading one never empties the next.
    assert.equal(await res.text(), p.body);
  }
  // A header changed on one answer does not leak into the next.
  toResponse(p, false).headers.set("x-extra", "1");
  assert.equal(toResponse(p, false).headers.get("x-extra"), null);
});

Deno.test("toResponse() gives HEAD the headers only and errors no ETag", async () => {
  const p = jsonPayload({ a: 1 });
  const head = toResponse(p, true);
  assert.equal(head.headers.get("etag"), p.etag);
  assert.equal(head.headers.get("content-type"), "application/json");
  assert.equal(await head.text(), "");
  assert.equal(await toResponse(p, false).text(), p.body); // HEAD did not spoil the template
  const err = toResponse(textPayload("Not Found\n", 404), false);
  assert.equal(err.headers.get("etag"), null);
  assert.equal(err.headers.get("content-type"), "application/text");
  assert.equal(await err.text(), "Not Found\n");
});
