/**
 * with-prod over a PAM-backed session: the wrapped command's real gcloud
 * sends the session's request reason (CLOUDSDK_CORE_REQUEST_REASON →
 * X-Goog-Request-Reason, asserted from the fake's request log), its prod
 * token comes from the grant, and the grant is withdrawn when the command ends.
 */
import assert from "node:assert/strict";
import {
  approveNext,
  assertNoSecrets,
  baseEnv,
  hasCommand,
  PROD_SA,
  run,
  start,
  startStack,
} from "./_utils.ts";

const GCLOUD_ENV = {
  CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: "true",
  CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: "true",
};

Deno.test({
  name: "with-prod + PAM: a real gcloud sends the session's request reason; the grant ends with it",
  ignore: !hasCommand("gcloud"),
  fn: async () => {
    await using stack = await startStack({
      proxy: false,
      gateToml: [
        `approval_methods = "queue"`,
        `pam_entitlement = "prod-access"`,
        `prod_service_account = "${PROD_SA}"`,
      ].join("\n"),
    });
    // The child points gcloud at the fake itself: with-prod strips endpoint
    // overrides from the environment it is given, not from what its child sets.
    const crm = `${stack.fake.base}/crm/`;
    const script = `printf 'reason=%s\\n' "$CLOUDSDK_CORE_REQUEST_REASON"
CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER=${crm} gcloud projects describe demo-project --format='value(projectId)' >/dev/null 2>&1
exit 0`;
    await using p = await start(
      "with-prod",
      ["--reason", "hotfix for incident 42", "--", "/bin/sh", "-c", script],
      { env: baseEnv(stack.home, { GCP_GATE_CONFIG: stack.configPath, ...GCLOUD_ENV }) },
    );
    const approvalId = await approveNext(stack);
    const s = await p.status;
    assert.equal(s.code, 0, `with-prod failed:\n${p.output()}\n--- logs ---\n${stack.logs()}`);
    const expected = `gcp-gate approval ${approvalId}: hotfix for incident 42`;
    assert.match(p.stdout(), new RegExp(`^reason=${expected}$`, "m"));

    const call = stack.fake.requests.find((r) =>
      r.path.startsWith("/crm/v1/projects/demo-project")
    );
    assert.ok(call, `gcloud made no API call to the fake\n${p.output()}`);
    assert.equal(call.headers["x-goog-request-reason"], expected, "gcloud sent the reason");
    const auth = call.headers["authorization"] ?? "";
    const token = stack.fake.issued().find((t) => `Bearer ${t.token}` === auth);
    assert.equal(token?.email, PROD_SA, "gcloud used the prod token");
    const create = stack.fake.requests.find((r) =>
      r.method === "POST" && r.path.endsWith("/grants")
    );
    assert.equal(create?.headers["x-goog-request-reason"], expected, "PAM calls carry it too");

    // with-prod ended the session; the gate withdraws the grant.
    const end = Date.now() + 10_000;
    while (stack.fake.pam.grants()[0]?.state !== "WITHDRAWN" && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(stack.fake.pam.grants()[0]?.state, "WITHDRAWN", stack.logs());
    assertNoSecrets(p.output(), stack.fake, "with-prod output");
  },
});

Deno.test("with-prod + require_reason: no --reason is refused before anyone is asked; a reason reaches the child", async () => {
  await using stack = await startStack({
    proxy: false,
    gateToml:
      `approval_methods = "queue"\nrequire_reason = true\nprod_service_account = "${PROD_SA}"`,
  });
  const env = baseEnv(stack.home, { GCP_GATE_CONFIG: stack.configPath });
  const refused = await run("with-prod", ["--", "/bin/true"], { env });
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /a reason is required for prod access \(require_reason\)/);
  assert.equal(stack.fake.count(/generateAccessToken$/), 0);

  await using p = await start(
    "with-prod",
    [
      "--reason",
      "rotate keys",
      "--",
      "/bin/sh",
      "-c",
      'printf "reason=%s\\n" "$CLOUDSDK_CORE_REQUEST_REASON"',
    ],
    { env },
  );
  const approvalId = await approveNext(stack);
  assert.equal((await p.status).code, 0, p.output());
  assert.match(
    p.stdout(),
    new RegExp(`^reason=gcp-gate approval ${approvalId}: rotate keys$`, "m"),
  );
});
