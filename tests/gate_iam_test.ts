/**
 * `gcp-gate accounts` and `gcp-gate can` through the built launcher against
 * the fake Google: listing with and without the list permission, and
 * testIamPermissions for held and missing permissions under each identity
 * and on each resource kind.
 */
import assert from "node:assert/strict";
import {
  assertNoSecrets,
  baseEnv,
  DEV_SA,
  PROD_SA,
  run,
  type RunResult,
  tempDir,
} from "./_utils.ts";
import { FAKE_ENGINEER, type FakeGoogle, startFakeGoogle } from "./fakes/google.ts";
import { type FakeIamOptions, iamEndpointsToml } from "./fakes/google_iam.ts";

const OTHER_SA = "batch@demo-project.iam.gserviceaccount.com";
const DEV_NAME = `//iam.googleapis.com/projects/demo-project/serviceAccounts/${DEV_SA}`;
const PROD_NAME = `//iam.googleapis.com/projects/demo-project/serviceAccounts/${PROD_SA}`;
const PROJECT = "//cloudresourcemanager.googleapis.com/projects/demo-project";
const BUCKET = "//storage.googleapis.com/projects/_/buckets/demo-bucket";
const TOPIC = "//pubsub.googleapis.com/projects/demo-project/topics/events";
const TABLE = "//bigquery.googleapis.com/projects/demo-project/datasets/sales/tables/orders";

const IAM: FakeIamOptions = {
  serviceAccounts: { "demo-project": [DEV_SA, PROD_SA, OTHER_SA] },
  grants: {
    [PROJECT]: {
      [FAKE_ENGINEER]: ["iam.serviceAccounts.list", "resourcemanager.projects.get"],
      [DEV_SA]: ["resourcemanager.projects.get"],
    },
    [DEV_NAME]: { [FAKE_ENGINEER]: ["iam.serviceAccounts.getAccessToken"] },
    [PROD_NAME]: { [FAKE_ENGINEER]: ["iam.serviceAccounts.getAccessToken"] },
    [BUCKET]: {
      [DEV_SA]: ["storage.objects.get"],
      [PROD_SA]: ["storage.objects.get", "storage.objects.delete"],
    },
    [TOPIC]: { [DEV_SA]: ["pubsub.topics.publish"] },
    [TABLE]: { [FAKE_ENGINEER]: ["bigquery.tables.getData"] },
  },
};

interface Setup extends AsyncDisposable {
  readonly fake: FakeGoogle;
  gate(args: string[]): Promise<RunResult>;
}

async function setup(iam: FakeIamOptions = IAM, toml = ""): Promise<Setup> {
  const dir = tempDir("gcp-gate-iam-");
  const fake = await startFakeGoogle({ iam });
  const h = dir.path;
  Deno.writeTextFileSync(`${h}/adc.json`, fake.adcJson(), { mode: 0o600 });
  const config = `${h}/gate.toml`;
  Deno.writeTextFileSync(
    config,
    [
      `project_id = "demo-project"`,
      `service_account = "${DEV_SA}"`,
      `prod_service_account = "${PROD_SA}"`,
      `socket_path = "${h}/run/gcp-gate/gate.sock"`,
      `credentials_file = "${h}/adc.json"`,
      toml,
      fake.endpointsToml() + iamEndpointsToml(fake.base),
    ].join("\n"),
  );
  return {
    fake,
    gate: async (args) => {
      const res = await run("gcp-gate", [...args, "--config", config], { env: baseEnv(h) });
      // Tokens are minted for these questions: none may reach the terminal.
      assertNoSecrets(res.stdout + res.stderr, fake, "gcp-gate output");
      return res;
    },
    async [Symbol.asyncDispose]() {
      await fake.close();
      await dir[Symbol.asyncDispose]();
    },
  };
}

Deno.test("accounts: lists the project's accounts, who can impersonate which, dev/prod marked", async () => {
  await using s = await setup();
  const res = await s.gate(["accounts", "--json"]);
  assert.equal(res.code, 0, res.stderr);
  const a = JSON.parse(res.stdout);
  assert.equal(a.project, "demo-project");
  assert.equal(a.principal, FAKE_ENGINEER);
  const by = Object.fromEntries(a.accounts.map((r: { email: string }) => [r.email, r]));
  assert.equal(by[DEV_SA].can_impersonate, true);
  assert.deepEqual(by[DEV_SA].configured_as, ["dev"]);
  assert.equal(by[PROD_SA].can_impersonate, true);
  assert.deepEqual(by[PROD_SA].configured_as, ["prod"]);
  assert.equal(by[OTHER_SA].can_impersonate, false);
  assert.deepEqual(by[OTHER_SA].configured_as, []);
  // One permission test per account, each asking exactly getAccessToken.
  const tests = s.fake.requests.filter((r) => r.path.endsWith(":testIamPermissions"));
  assert.equal(tests.length, 3);
  for (const t of tests) {
    assert.deepEqual(JSON.parse(t.body), { permissions: ["iam.serviceAccounts.getAccessToken"] });
  }

  const text = await s.gate(["accounts"]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(
    text.stdout,
    /project demo-project: 3 service accounts; engineer@example\.com can impersonate 2/,
  );
  assert.match(text.stdout, new RegExp(`yes +${DEV_SA.replaceAll(".", "\\.")} +\\[dev\\]`));
  assert.match(text.stdout, new RegExp(`no +${OTHER_SA.replaceAll(".", "\\.")}`));
});

Deno.test("accounts: pages through long listings with bounded concurrency", async () => {
  const many = Array.from(
    { length: 230 },
    (_, i) => `sa-${i}@demo-project.iam.gserviceaccount.com`,
  );
  await using s = await setup({
    serviceAccounts: { "demo-project": [...many, DEV_SA, PROD_SA] },
    grants: { [PROJECT]: { [FAKE_ENGINEER]: ["iam.serviceAccounts.list"] } },
  });
  const delay = 20;
  s.fake.inject({ match: /:testIamPermissions$/, delayMs: delay, times: Infinity });
  const res = await s.gate(["accounts", "--json", "--project", "demo-project"]);
  assert.equal(res.code, 0, res.stderr);
  const a = JSON.parse(res.stdout);
  assert.equal(a.accounts.length, 232);
  assert.equal(a.truncated, false);
  assert.equal(s.fake.count(/GET \/iamapi\/v1\/projects\/demo-project\/serviceAccounts$/), 3);
  // Every test is held `delay` ms by the fake, so all tests that arrive within
  // a shorter window are in flight together: at most 8, and more than one.
  const times = s.fake.requests.filter((r) => r.path.endsWith(":testIamPermissions")).map((r) =>
    r.at
  ).sort((x, y) => x - y);
  assert.equal(times.length, 232);
  let most = 0;
  for (let i = 0; i < times.length; i++) {
    let n = 0;
    while (i + n < times.length && times[i + n]! - times[i]! < delay - 2) n++;
    most = Math.max(most, n);
  }
  assert.ok(most <= 8, `${most} permission tests in flight at once`);
  assert.ok(most >= 2, "the tests ran one at a time");
});

Deno.test("accounts: without the list permission, one clear line and exit 1", async () => {
  await using s = await setup({ serviceAccounts: IAM.serviceAccounts!, grants: {} });
  const res = await s.gate(["accounts"]);
  assert.equal(res.code, 1);
  assert.equal(res.stdout, "");
  const lines = res.stderr.trim().split("\n");
  assert.equal(lines.length, 1, res.stderr);
  assert.match(
    lines[0]!,
    /Cannot list the service accounts of project "demo-project": 403 PERMISSION_DENIED/,
  );
  assert.match(lines[0]!, /needs iam\.serviceAccounts\.list on the project/);
  assert.match(
    lines[0]!,
    /gcp-gate can iam\.serviceAccounts\.getAccessToken --resource \/\/iam\.googleapis\.com\/projects\/demo-project\/serviceAccounts\/EMAIL --as me/,
  );
  assert.equal(s.fake.count(/:testIamPermissions$/), 0);
});

Deno.test("can: held and missing permissions under dev, prod and me", async () => {
  await using s = await setup();
  const ask = async (as: string, ...perms: string[]) => {
    const res = await s.gate(["can", ...perms, "--resource", BUCKET, "--as", as, "--json"]);
    return {
      code: res.code,
      stderr: res.stderr,
      answer: res.stdout ? JSON.parse(res.stdout) : undefined,
    };
  };
  const dev = await ask("dev", "storage.objects.get", "storage.objects.delete");
  assert.equal(dev.code, 1, "a missing permission exits 1");
  assert.equal(dev.answer.principal, DEV_SA);
  assert.deepEqual(dev.answer.held, ["storage.objects.get"]);
  assert.deepEqual(dev.answer.missing, ["storage.objects.delete"]);

  const prod = await ask("prod", "storage.objects.get", "storage.objects.delete");
  assert.equal(prod.code, 0, prod.stderr);
  assert.equal(prod.answer.principal, PROD_SA);
  assert.deepEqual(prod.answer.missing, []);

  const me = await ask("me", "storage.objects.get");
  assert.equal(me.code, 1);
  assert.equal(me.answer.principal, FAKE_ENGINEER);
  assert.deepEqual(me.answer.held, []);

  // The question is asked with each identity's own token, minted short-lived.
  const asked = s.fake.requests.filter((r) => r.path.endsWith("/iam/testPermissions"));
  const callers = asked.map((r) =>
    s.fake.issued().find((t) => `Bearer ${t.token}` === r.headers.authorization)?.email
  );
  assert.deepEqual(callers, [DEV_SA, PROD_SA, FAKE_ENGINEER]);
  for (const mint of s.fake.requests.filter((r) => r.path.endsWith(":generateAccessToken"))) {
    assert.equal(JSON.parse(mint.body).lifetime, "600s");
  }

  const text = await s.gate([
    "can",
    "storage.objects.get",
    "storage.objects.delete",
    "--resource",
    BUCKET,
  ]);
  assert.equal(text.code, 1);
  assert.match(
    text.stdout,
    /^as dev \(dev@demo-project\.iam\.gserviceaccount\.com\) on \/\/storage/,
  );
  assert.match(
    text.stdout,
    /\n {2}yes {2}storage\.objects\.get\n {2}no {3}storage\.objects\.delete/,
  );
});

Deno.test("can: projects, service accounts, Pub/Sub topics and BigQuery tables", async () => {
  await using s = await setup();
  const cases: [string, string, string, boolean][] = [
    [PROJECT, "dev", "resourcemanager.projects.get", true],
    [PROJECT, "prod", "resourcemanager.projects.get", false],
    [DEV_NAME, "me", "iam.serviceAccounts.getAccessToken", true],
    [TOPIC, "dev", "pubsub.topics.publish", true],
    [TOPIC, "me", "pubsub.topics.publish", false],
    [TABLE, "me", "bigquery.tables.getData", true],
    [TABLE, "dev", "bigquery.tables.getData", false],
  ];
  for (const [resource, as, perm, held] of cases) {
    const res = await s.gate(["can", perm, "--resource", resource, "--as", as, "--json"]);
    assert.equal(res.code, held ? 0 : 1, `${as} ${perm} on ${resource}: ${res.stderr}`);
    assert.deepEqual(JSON.parse(res.stdout).held, held ? [perm] : [], `${as} on ${resource}`);
  }
  assert.equal(s.fake.count(/POST \/crm\/v3\/projects\/demo-project:testIamPermissions$/), 2);
  assert.equal(
    s.fake.count(/POST \/pubsub\/v1\/projects\/demo-project\/topics\/events:testIamPermissions$/),
    2,
  );
  assert.equal(
    s.fake.count(
      /POST \/bigquery\/bigquery\/v2\/projects\/demo-project\/datasets\/sales\/tables\/orders:testIamPermissions$/,
    ),
    2,
  );
});

Deno.test("can: an unsupported kind names the supported ones; nothing is asked", async () => {
  await using s = await setup();
  const dataset = await s.gate([
    "can",
    "bigquery.datasets.get",
    "--resource",
    "//bigquery.googleapis.com/projects/demo-project/datasets/sales",
  ]);
  assert.equal(dataset.code, 2);
  assert.match(dataset.stderr, /BigQuery has no testIamPermissions for datasets/);
  const other = await s.gate([
    "can",
    "compute.instances.get",
    "--resource",
    "//compute.googleapis.com/projects/p/zones/z/instances/i",
  ]);
  assert.equal(other.code, 2);
  assert.match(
    other.stderr,
    /unsupported resource .*supported: \/\/cloudresourcemanager\.googleapis\.com\/projects\/PROJECT_ID, \/\/storage\.googleapis\.com/,
  );
  const bad = await s.gate(["can", "storage.*", "--resource", BUCKET]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /not a permission name/);
  const noAs = await s.gate(["can", "storage.objects.get", "--resource", BUCKET, "--as", "root"]);
  assert.equal(noAs.code, 2);
  assert.match(noAs.stderr, /--as must be one of dev, prod, me/);
  assert.equal(s.fake.requests.length, 0, "usage errors touch no credential");
});
