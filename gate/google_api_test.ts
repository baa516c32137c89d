import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import { createGoogleApi, type FetchFn, googleErrorMessage, isExpiredGrant } from "./google_api.ts";

const ENDPOINTS = {
  oauth2: "https://oauth2.test",
  iamcredentials: "https://iam.test",
  cloudresourcemanager: "https://crm.test",
  sts: "https://sts.test",
  privilegedaccessmanager: "https://pam.test",
};

function scripted(responses: (() => Response | Promise<Response>)[]): FetchFn & { urls: string[] } {
  const urls: string[] = [];
  const f = (url: string): Promise<Response> => {
    urls.push(url);
    const next = responses.shift();
    if (!next) return Promise.reject(new Error("no more responses"));
    return Promise.resolve(next());
  };
  return Object.assign(f, { urls });
}

Deno.test("googleErrorMessage() extracts, strips and caps Google's message", () => {
  const body = JSON.stringify({
    error: { code: 403, status: "PERMISSION_DENIED", message: `no\u0007 ${"x".repeat(1000)}` },
  });
  const m = googleErrorMessage(403, body);
  assert.match(m, /^403 PERMISSION_DENIED: no x+/);
  assert.ok(m.length <= 300);
  assert.equal(googleErrorMessage(500, "<html>"), "HTTP 500");
  assert.equal(
    googleErrorMessage(400, JSON.stringify({ error: "invalid_grant", error_description: "gone" })),
    "400 invalid_grant: gone",
  );
});

Deno.test("isExpiredGrant() recognises invalid_grant, invalid_rapt and reauth", () => {
  assert.ok(isExpiredGrant(JSON.stringify({ error: "invalid_grant" })));
  assert.ok(isExpiredGrant(JSON.stringify({ error: "invalid_rapt" })));
  assert.ok(
    isExpiredGrant(JSON.stringify({ error: "invalid_grant", error_subtype: "invalid_rapt" })),
  );
  assert.ok(
    isExpiredGrant(
      JSON.stringify({ error: "unauthorized_client", error_description: "Reauth needed" }),
    ),
  );
  assert.ok(!isExpiredGrant(JSON.stringify({ error: "invalid_request" })));
  assert.ok(!isExpiredGrant("nope"));
});

Deno.test("generateAccessToken() posts scope and lifetime, and retries a 503", async () => {
  const fetch = scripted([
    () => Response.json({ error: { code: 503, message: "busy" } }, { status: 503 }),
    () => Response.json({ accessToken: "tok", expireTime: "2030-01-01T00:00:00Z" }),
  ]);
  const api = createGoogleApi({ endpoints: ENDPOINTS, fetch, baseDelayMs: 1 });
  const t = await api.generateAccessToken("src", "sa@p.iam.gserviceaccount.com", ["s"], 600);
  assert.equal(t.token, "tok");
  assert.equal(t.expiresAt, Date.parse("2030-01-01T00:00:00Z"));
  assert.equal(fetch.urls.length, 2);
  assert.equal(
    fetch.urls[0],
    "https://iam.test/v1/projects/-/serviceAccounts/sa%40p.iam.gserviceaccount.com:generateAccessToken",
  );
});

Deno.test("oauthToken() turns invalid_grant into credentials_expired without retrying", async () => {
  const fetch = scripted([
    () => Response.json({ error: "invalid_grant", error_description: "revoked" }, { status: 400 }),
  ]);
  const api = createGoogleApi({ endpoints: ENDPOINTS, fetch });
  await assert.rejects(
    api.oauthToken("https://oauth2.test/token", { grant_type: "refresh_token" }),
    (e) => e instanceof GateError && e.code === "credentials_expired" && /revoked/.test(e.message),
  );
  assert.equal(fetch.urls.length, 1);
});

Deno.test("an upstream that never answers is a timeout within the deadline", async () => {
  const hang: FetchFn = (_url, init) =>
    new Promise((_resolve, reject) => {
      init.signal?.addEventListener("abort", () => reject(init.signal?.reason));
    });
  const api = createGoogleApi({
    endpoints: ENDPOINTS,
    fetch: hang,
    timeoutMs: 30,
    deadlineMs: 200,
    baseDelayMs: 1,
  });
  const started = Date.now();
  await assert.rejects(
    api.projectNumber("src", "p"),
    (e) => e instanceof GateError && e.code === "timeout" && e.status === 504,
  );
  assert.ok(Date.now() - started < 5000);
});

Deno.test("projectNumber() reads the number from the resource name", async () => {
  const fetch = scripted([() => Response.json({ name: "projects/42", projectId: "p" })]);
  const api = createGoogleApi({ endpoints: ENDPOINTS, fetch });
  assert.equal(await api.projectNumber("src", "p"), "42");
  assert.equal(fetch.urls[0], "https://crm.test/v3/projects/p");
});
