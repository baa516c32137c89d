import assert from "node:assert/strict";
import { TEST_ENDPOINTS } from "./_test_endpoints.ts";
import { GateError } from "../shared/errors.ts";
import { checkPermissions, parseResource, testPermissionsRequest } from "./resources.ts";

const E = TEST_ENDPOINTS;

const usage = (re: RegExp) => (e: unknown): boolean =>
  e instanceof GateError && e.code === "usage" && re.test(e.message);

Deno.test("testPermissionsRequest() builds each kind's documented call", () => {
  const cases: [string, string, string][] = [
    [
      "//cloudresourcemanager.googleapis.com/projects/p-1",
      "POST",
      "https://crm.test/v3/projects/p-1:testIamPermissions",
    ],
    [
      "//storage.googleapis.com/projects/_/buckets/b.x",
      "GET",
      "https://gcs.test/storage/v1/b/b.x/iam/testPermissions?permissions=a.b.c&permissions=d.e.f",
    ],
    [
      "//iam.googleapis.com/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com",
      "POST",
      "https://iam.test/v1/projects/-/serviceAccounts/sa%40p.iam.gserviceaccount.com:testIamPermissions",
    ],
    [
      "//pubsub.googleapis.com/projects/p/topics/t",
      "POST",
      "https://ps.test/v1/projects/p/topics/t:testIamPermissions",
    ],
    [
      "//pubsub.googleapis.com/projects/p/subscriptions/s",
      "POST",
      "https://ps.test/v1/projects/p/subscriptions/s:testIamPermissions",
    ],
    [
      "//bigquery.googleapis.com/projects/p/datasets/d/tables/t",
      "POST",
      "https://bq.test/bigquery/v2/projects/p/datasets/d/tables/t:testIamPermissions",
    ],
  ];
  for (const [name, method, url] of cases) {
    const req = testPermissionsRequest(name, ["a.b.c", "d.e.f"], E);
    assert.equal(req.url, url, name);
    assert.equal(req.init.method, method, name);
    if (method === "POST") {
      assert.deepEqual(JSON.parse(String(req.init.body)), { permissions: ["a.b.c", "d.e.f"] });
    }
  }
});

Deno.test("parseResource() refuses other kinds, datasets and path tricks, naming the supported forms", () => {
  assert.throws(() => parseResource("projects/p"), usage(/starts with \/\/SERVICE/));
  assert.throws(
    () => parseResource("//compute.googleapis.com/projects/p"),
    usage(/supported: \/\/cloudresourcemanager/),
  );
  assert.throws(
    () => parseResource("//bigquery.googleapis.com/projects/p/datasets/d"),
    usage(/no testIamPermissions for datasets/),
  );
  for (
    const bad of [
      "//storage.googleapis.com/projects/_/buckets/..",
      "//storage.googleapis.com/projects/_/buckets/a?b",
      "//storage.googleapis.com/projects/_/buckets/a%2Fb",
      "//storage.googleapis.com/projects/_/buckets/a b",
      "//storage.googleapis.com/projects/x/buckets/b",
      "//pubsub.googleapis.com/projects/p/topics/t/extra",
      `//storage.googleapis.com/projects/_/buckets/${"b".repeat(2000)}`,
    ]
  ) {
    assert.throws(() => parseResource(bad), usage(/unsupported resource/), bad);
  }
  assert.equal(parseResource("//pubsub.googleapis.com/projects/p/topics/t").endpoint, "pubsub");
});

Deno.test("checkPermissions() accepts service.resource.verb names only, at most 100, deduplicated", () => {
  assert.deepEqual(checkPermissions(["storage.objects.get", "storage.objects.get"]), [
    "storage.objects.get",
  ]);
  assert.deepEqual(checkPermissions(["iam.serviceAccounts.getAccessToken"]), [
    "iam.serviceAccounts.getAccessToken",
  ]);
  for (const bad of ["storage.*", "storage", "roles/viewer", "a.b", "x.y.z\n", ""]) {
    assert.throws(() => checkPermissions([bad]), usage(/not a permission name/), bad);
  }
  assert.throws(() => checkPermissions([]), usage(/at least one/));
  assert.throws(
    () => checkPermissions(Array.from({ length: 101 }, (_, i) => `a.b.c${i}`)),
    usage(/at most 100/),
  );
});
