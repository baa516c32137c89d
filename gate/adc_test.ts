import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import { type AdcDeps, impersonationTarget, parseSourceCredential } from "./adc.ts";
import type { GoogleApi } from "./google_api.ts";

function deps(calls: string[]): AdcDeps {
  const ok = (what: string) => (): Promise<{ token: string; expiresAt: number }> => {
    calls.push(what);
    return Promise.resolve({ token: `${what}-token`, expiresAt: Date.now() + 3600_000 });
  };
  const api: GoogleApi = {
    oauthToken: ok("oauth"),
    stsExchange: ok("sts"),
    generateAccessToken: ok("iam"),
    getText: () => Promise.resolve("subject"),
    generateIdToken: () => Promise.reject(new Error("unused")),
    tokenEmail: () => Promise.reject(new Error("unused")),
    projectNumber: () => Promise.reject(new Error("unused")),
  };
  return {
    api,
    endpoints: {
      oauth2: "https://o.test",
      iamcredentials: "https://i.test",
      cloudresourcemanager: "https://c.test",
      sts: "https://s.test",
      privilegedaccessmanager: "https://pam.test",
    },
    readFile: () => "file-subject",
    hostname: () => "devbox",
  };
}

const expired = (re: RegExp) => (e: unknown): boolean =>
  e instanceof GateError && e.code === "credentials_expired" && re.test(e.message) &&
  e.message.includes("run on the host devbox: gcloud auth application-default login");

Deno.test("impersonationTarget() reads the account from the IAM URL", () => {
  assert.equal(
    impersonationTarget(
      "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/a%40p.iam.gserviceaccount.com:generateAccessToken",
    ),
    "a@p.iam.gserviceaccount.com",
  );
  assert.equal(impersonationTarget("https://example.com/"), undefined);
});

Deno.test("parseSourceCredential() refuses broken and unsupported files with the fix", () => {
  const d = deps([]);
  assert.throws(() => parseSourceCredential("/adc.json", "{", d), expired(/not valid JSON/));
  assert.throws(() => parseSourceCredential("/adc.json", "[]", d), expired(/not a JSON object/));
  assert.throws(
    () => parseSourceCredential("/adc.json", '{"type":"authorized_user"}', d),
    expired(/incomplete \(no client_id\)/),
  );
  assert.throws(
    () => parseSourceCredential("/adc.json", '{"type":"external_account_authorized_user"}', d),
    expired(/which the gate does not support/),
  );
  assert.throws(
    () =>
      parseSourceCredential(
        "/adc.json",
        JSON.stringify({
          type: "external_account",
          audience: "a",
          subject_token_type: "t",
          credential_source: { executable: { command: "x" } },
        }),
        d,
      ),
    expired(/command must start with an absolute path/),
  );
});

Deno.test("an authorized_user token is refreshed once and cached", async () => {
  const calls: string[] = [];
  const cred = parseSourceCredential(
    "/adc.json",
    JSON.stringify({
      type: "authorized_user",
      client_id: "i",
      client_secret: "s",
      refresh_token: "r",
    }),
    deps(calls),
  );
  assert.equal(cred.type, "authorized_user");
  assert.equal(cred.email, undefined);
  const [a, b] = await Promise.all([cred.getToken(), cred.getToken()]);
  assert.equal(a.token, "oauth-token");
  assert.equal(b.token, "oauth-token");
  await cred.getToken();
  assert.deepEqual(calls, ["oauth"]);
});

Deno.test("an external_account with impersonation exchanges at STS, then impersonates", async () => {
  const calls: string[] = [];
  const cred = parseSourceCredential(
    "/adc.json",
    JSON.stringify({
      type: "external_account",
      audience: "//iam.googleapis.com/x",
      subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
      service_account_impersonation_url:
        "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/w@p.iam.gserviceaccount.com:generateAccessToken",
      credential_source: { file: "/var/run/token" },
    }),
    deps(calls),
  );
  assert.equal(cred.email, "w@p.iam.gserviceaccount.com");
  assert.equal((await cred.getToken()).token, "iam-token");
  assert.deepEqual(calls, ["sts", "iam"]);
});
