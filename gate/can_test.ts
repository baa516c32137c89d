import assert from "node:assert/strict";
import { TEST_ENDPOINTS } from "./_test_endpoints.ts";
import { askCan, formatCan } from "./can.ts";
import type { Inspector } from "./inspect.ts";

const endpoints = TEST_ENDPOINTS;

Deno.test("askCan() asks with the identity's token and splits held from missing, keeping the note", async () => {
  const seen: { url: string; auth: string | null }[] = [];
  const insp: Inspector = {
    api: {
      json: (_what, url, init) => {
        seen.push({ url, auth: new Headers(init.headers).get("authorization") });
        return Promise.resolve({ permissions: ["pubsub.topics.publish"] });
      },
    },
    tokenAs: (as) =>
      Promise.resolve({
        as,
        email: "me@example.com",
        token: "tok-prod",
        note: "no prod_service_account is configured: prod access is your own credentials",
      }),
  };
  const a = await askCan(insp, {
    as: "prod",
    resource: "//pubsub.googleapis.com/projects/p/topics/t",
    permissions: ["pubsub.topics.publish", "pubsub.topics.delete"],
  }, endpoints);
  assert.deepEqual(seen, [{
    url: "https://ps.test/v1/projects/p/topics/t:testIamPermissions",
    auth: "Bearer tok-prod",
  }]);
  assert.deepEqual(a.held, ["pubsub.topics.publish"]);
  assert.deepEqual(a.missing, ["pubsub.topics.delete"]);
  assert.equal(
    formatCan(a),
    [
      "as prod (me@example.com) on //pubsub.googleapis.com/projects/p/topics/t:",
      "  yes  pubsub.topics.publish",
      "  no   pubsub.topics.delete",
      "note: no prod_service_account is configured: prod access is your own credentials",
    ].join("\n"),
  );
});
