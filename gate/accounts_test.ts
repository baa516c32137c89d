import assert from "node:assert/strict";
import { TEST_ENDPOINTS } from "./_test_endpoints.ts";
import { GateError } from "../shared/errors.ts";
import { askAccounts, formatAccounts } from "./accounts.ts";
import type { Inspector } from "./inspect.ts";

const endpoints = TEST_ENDPOINTS;

/** An inspector whose IAM answers are scripted per URL. */
function inspector(answer: (url: string) => unknown): Inspector & { urls: string[] } {
  const urls: string[] = [];
  return {
    urls,
    api: {
      json: (_what, url) => {
        urls.push(url);
        try {
          return Promise.resolve(answer(url));
        } catch (err) {
          return Promise.reject(err);
        }
      },
    },
    tokenAs: (as) => Promise.resolve({ as, email: "me@example.com", token: "t", note: undefined }),
  };
}

Deno.test("askAccounts() tests listed and configured accounts; a failed test is unknown, not fatal", async () => {
  const insp = inspector((url) => {
    if (url.includes("/serviceAccounts?")) {
      return { accounts: [{ email: "a@p.iam.gserviceaccount.com", displayName: "A\u0007" }] };
    }
    if (url.includes("a%40p")) return { permissions: ["iam.serviceAccounts.getAccessToken"] };
    throw new GateError("upstream", "Cannot test: 404 NOT_FOUND: gone");
  });
  const answer = await askAccounts(insp, "p", {
    endpoints,
    service_account: "a@p.iam.gserviceaccount.com",
    prod_service_account: "prod@other.iam.gserviceaccount.com",
  });
  assert.equal(answer.accounts.length, 2);
  const [a, prod] = answer.accounts;
  assert.equal(a!.can_impersonate, true);
  assert.deepEqual(a!.configured_as, ["dev"]);
  assert.equal(a!.display_name, "A", "control characters stripped from Google's text");
  assert.equal(prod!.listed, false);
  assert.equal(prod!.can_impersonate, null);
  assert.match(prod!.error!, /404 NOT_FOUND/);
  assert.ok(insp.urls.includes(
    "https://iam.test/v1/projects/-/serviceAccounts/prod%40other.iam.gserviceaccount.com:testIamPermissions",
  ));
  const text = formatAccounts(answer);
  assert.match(text, /^project p: 1 service accounts; me@example\.com can impersonate 1/);
  assert.match(
    text,
    /unknown +prod@other\.iam\.gserviceaccount\.com +\[prod\] \(not in this project\)/,
  );
});

Deno.test("askAccounts() stops after 20 pages and says the listing is truncated", async () => {
  let page = 0;
  const insp = inspector((url) =>
    url.includes("/serviceAccounts?")
      ? {
        accounts: [{ email: `sa${page}@p.iam.gserviceaccount.com` }],
        nextPageToken: `n${++page}`,
      }
      : {}
  );
  const answer = await askAccounts(insp, "p", {
    endpoints,
    service_account: undefined,
    prod_service_account: undefined,
  });
  assert.equal(page, 20);
  assert.equal(answer.truncated, true);
  assert.match(formatAccounts(answer), /first 2000 only/);
});
