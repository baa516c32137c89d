import assert from "node:assert/strict";
import { GateError } from "../../shared/errors.ts";
import {
  createPamClient,
  MAX_SEARCH_PAGES,
  pamStatus,
  parseDuration,
  resolveEntitlement,
} from "./client.ts";

const ENT = "projects/p/locations/global/entitlements/prod";

function recorder(answers: (() => Response)[]) {
  const calls: { url: string; init: RequestInit }[] = [];
  const fetch = (url: string, init: RequestInit): Promise<Response> => {
    calls.push({ url, init });
    const next = answers.shift();
    return Promise.resolve(next ? next() : new Response("{}", { status: 500 }));
  };
  return { calls, fetch };
}

Deno.test("resolveEntitlement() keeps full names and resolves short ids", () => {
  assert.equal(resolveEntitlement(ENT, undefined, "global"), ENT);
  assert.equal(
    resolveEntitlement("organizations/123/locations/global/entitlements/x", "p", "global"),
    "organizations/123/locations/global/entitlements/x",
  );
  assert.equal(
    resolveEntitlement("prod", "p", "europe-west1"),
    "projects/p/locations/europe-west1/entitlements/prod",
  );
  assert.throws(() => resolveEntitlement("prod", undefined, "global"), /set project_id too/);
  assert.throws(() => resolveEntitlement("projects/p/../x", "p", "global"), /must be projects/);
  assert.throws(() => resolveEntitlement("prod", "p", "Bad Location"), /must be projects/);
});

Deno.test("pamStatus() maps FAILED_PRECONDITION to 409 and keeps retryable statuses", () => {
  const body = (s: string) => JSON.stringify({ error: { code: 400, status: s, message: "m" } });
  assert.equal(pamStatus(400, body("FAILED_PRECONDITION")), 409);
  assert.equal(pamStatus(409, body("ALREADY_EXISTS")), 409);
  assert.equal(pamStatus(400, body("INVALID_ARGUMENT")), 403);
  assert.equal(pamStatus(429, "x"), 429);
  assert.equal(pamStatus(503, "x"), 502);
  assert.equal(pamStatus(404, "x"), 404);
  assert.equal(parseDuration("3600s"), 3600);
  assert.equal(parseDuration("1.5s"), 1);
  assert.equal(parseDuration("soon"), undefined);
});

Deno.test("createGrant() retries a 503 with the same requestId and sends the reason", async () => {
  const grant = { name: `${ENT}/grants/g1`, state: "ACTIVATING", requestedDuration: "600s" };
  const r = recorder([
    () => Response.json({ error: { code: 503, status: "UNAVAILABLE" } }, { status: 503 }),
    () => Response.json(grant),
  ]);
  const c = createPamClient({ endpoint: "https://pam.test", fetch: r.fetch, baseDelayMs: 1 });
  const g = await c.createGrant("src-token", ENT, {
    requestId: "11111111-2222-3333-4444-555555555555",
    durationSeconds: 600,
    justification: "gcp-gate approval x",
  }, { requestReason: "gcp-gate approval abcd1234" });
  assert.equal(g.name, grant.name);
  assert.equal(g.state, "ACTIVATING");
  assert.equal(r.calls.length, 2);
  for (const call of r.calls) {
    assert.equal(
      call.url,
      `https://pam.test/v1/${ENT}/grants?requestId=11111111-2222-3333-4444-555555555555`,
    );
    const h = call.init.headers as Record<string, string>;
    assert.equal(h["x-goog-request-reason"], "gcp-gate approval abcd1234");
    assert.equal(h.authorization, "Bearer src-token");
    assert.deepEqual(JSON.parse(String(call.init.body)), {
      requestedDuration: "600s",
      justification: { unstructuredJustification: "gcp-gate approval x" },
    });
  }
});

Deno.test("a FAILED_PRECONDITION is not retried and says 409", async () => {
  const r = recorder([
    () =>
      Response.json(
        { error: { code: 400, status: "FAILED_PRECONDITION", message: "open grant" } },
        {
          status: 400,
        },
      ),
  ]);
  const c = createPamClient({ endpoint: "https://pam.test", fetch: r.fetch, baseDelayMs: 1 });
  const err = await c.createGrant("s", ENT, {
    requestId: "r",
    durationSeconds: 60,
    justification: "j",
  }).catch((e) => e);
  assert.ok(err instanceof GateError && err.status === 409, String(err));
  assert.match(err.message, /open grant/);
  assert.equal(r.calls.length, 1);
});

Deno.test("answers naming a grant outside the entitlement are refused", async () => {
  const r = recorder([
    () => Response.json({ name: "projects/other/locations/global/entitlements/e/grants/g" }),
    () =>
      Response.json({
        grants: [
          { name: `${ENT}/grants/ok`, state: "ACTIVE" },
          { name: `${ENT}/grants/../../evil`, state: "ACTIVE" },
          { name: 42 },
        ],
      }),
  ]);
  const c = createPamClient({ endpoint: "https://pam.test", fetch: r.fetch });
  await assert.rejects(
    c.createGrant("s", ENT, { requestId: "r", durationSeconds: 60, justification: "j" }),
    /unexpected grant/,
  );
  const mine = await c.searchOwnGrants("s", ENT);
  assert.deepEqual(mine.map((g) => g.name), [`${ENT}/grants/ok`]);
  assert.match(r.calls[1]!.url, /grants:search\?callerRelationship=HAD_CREATED&pageSize=100$/);
});

Deno.test("searchOwnGrants() follows pages (boundedly) and keeps open grants only", async () => {
  let n = 0;
  const pages: string[] = [];
  const fetch = (url: string): Promise<Response> => {
    pages.push(url);
    n++;
    return Promise.resolve(Response.json({
      grants: [
        { name: `${ENT}/grants/old${n}`, state: "WITHDRAWN" },
        ...(n === 3 ? [{ name: `${ENT}/grants/live`, state: "ACTIVE" }] : []),
      ],
      nextPageToken: `t${n}`,
    }));
  };
  const c = createPamClient({ endpoint: "https://pam.test", fetch });
  const mine = await c.searchOwnGrants("s", ENT);
  assert.deepEqual(mine.map((g) => g.name), [`${ENT}/grants/live`]);
  assert.equal(pages.length, MAX_SEARCH_PAGES, "an endless listing stops");
  assert.match(pages[1]!, /&pageToken=t1$/);
});

Deno.test("withdrawGrant() returns the operation; operationDone() follows it", async () => {
  const r = recorder([
    () => Response.json({ name: "projects/p/locations/global/operations/op-1", done: false }),
    () => Response.json({ name: "projects/p/locations/global/operations/op-1", done: false }),
    () => Response.json({ done: true, response: {} }),
    () => Response.json({ done: true, error: { code: 9, message: "grant is ENDED" } }),
  ]);
  const c = createPamClient({ endpoint: "https://pam.test", fetch: r.fetch });
  const op = await c.withdrawGrant("s", `${ENT}/grants/g1`);
  assert.equal(op, "projects/p/locations/global/operations/op-1");
  assert.equal(r.calls[0]!.url, `https://pam.test/v1/${ENT}/grants/g1:withdraw`);
  assert.equal(r.calls[0]!.init.method, "POST");
  assert.equal(await c.operationDone("s", op!), false);
  assert.equal(await c.operationDone("s", op!), true);
  await assert.rejects(c.operationDone("s", op!), /failed: grant is ENDED/);
});

Deno.test("getEntitlement() reads roles and the longest duration", async () => {
  const r = recorder([() =>
    Response.json({
      name: ENT,
      maxRequestDuration: "7200s",
      privilegedAccess: {
        gcpIamAccess: { roleBindings: [{ role: "roles/run.admin" }, { role: "roles/viewer" }] },
      },
    })]);
  const c = createPamClient({ endpoint: "https://pam.test", fetch: r.fetch });
  const e = await c.getEntitlement("s", ENT);
  assert.deepEqual(e.roles, ["roles/run.admin", "roles/viewer"]);
  assert.equal(e.maxSeconds, 7200);
});
