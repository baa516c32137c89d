import assert from "node:assert/strict";
import {
  isSecretKey,
  redactText,
  redactValue,
  sanitizeMessage,
  stripUnsafeChars,
} from "./redact.ts";

const ACCESS = "ya29.a0AfH6SMBx-secret_token.part";
const REFRESH = "1//0gLbc123-abcdefghijklmnop";
const JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl";

Deno.test("redactText() removes access tokens, refresh tokens, JWTs and bearer values", () => {
  const out = redactText(`a=${ACCESS} r=${REFRESH} j=${JWT} Authorization: Bearer abc.def`);
  for (const secret of [ACCESS, REFRESH, JWT, "abc.def"]) assert.ok(!out.includes(secret), secret);
  assert.match(out, /Bearer \[REDACTED\]/);
});

Deno.test("redactText() removes PEM private keys", () => {
  const pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----";
  assert.equal(redactText(`key: ${pem}`), "key: [REDACTED]");
});

Deno.test("redactValue() redacts secret-named fields at any depth and leaves the rest", () => {
  const out = redactValue({
    email: "a@b.c",
    access_token: "anything",
    nested: { client_secret: "s", list: [`x ${ACCESS}`] },
  });
  assert.deepEqual(out, {
    email: "a@b.c",
    access_token: "[REDACTED]",
    nested: { client_secret: "[REDACTED]", list: ["x [REDACTED]"] },
  });
  assert.ok(isSecretKey("refresh_token"));
  assert.ok(!isSecretKey("scopes"));
});

Deno.test("stripUnsafeChars() removes control and bidi characters", () => {
  assert.equal(stripUnsafeChars("rm\u202e -rf\u0007 /\x1b[31m"), "rm -rf /[31m");
  assert.equal(stripUnsafeChars("a\nb"), "a b");
  assert.equal(stripUnsafeChars("a\nb", true), "a\nb");
});

Deno.test("sanitizeMessage() makes one capped, redacted line", () => {
  const out = sanitizeMessage(`bad\n${ACCESS}\n${"x".repeat(1000)}`, 100);
  assert.equal(out.length, 100);
  assert.ok(!out.includes("\n"));
  assert.ok(!out.includes(ACCESS));
  assert.ok(out.endsWith("…"));
});

Deno.test("stripUnsafeChars() removes line/paragraph separators, zero-width and format characters", () => {
  // U+2028/2029 render as line breaks in dialogs; a forged "Project:" line must not appear.
  const forged = "fix\u2028\u2028Project: dev-sandbox\u2029Scopes: read-only";
  assert.equal(stripUnsafeChars(forged), "fixProject: dev-sandboxScopes: read-only");
  assert.equal(stripUnsafeChars("a\u200bb\u200dc\u2060d\ufeffe\u061cf\u00adg"), "abcdefg");
  assert.equal(stripUnsafeChars("tab\there\r\n", true), "tab\there\n");
});
