/**
 * gcp-metadata-proxy's HTTP surface, through the built launcher, backed by the
 * real gate and the fake Google.
 */
import assert from "node:assert/strict";
import { assertNoSecrets, baseEnv, DEV_SA, run, type Stack, start, startStack } from "./_utils.ts";

const FLAVOR = { "metadata-flavor": "Google" };
const SA_PATH = "/computeMetadata/v1/instance/service-accounts/default";

async function get(
  stack: Stack,
  path: string,
  init: RequestInit = { headers: FLAVOR },
): Promise<{ status: number; headers: Headers; body: string }> {
  const res = await fetch(`http://${stack.proxyHostPort}${path}`, { redirect: "manual", ...init });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

function withLogs(stack: Stack): string {
  return `\n--- logs ---\n${stack.logs()}`;
}

Deno.test("proxy: answers like a GCE metadata server", async () => {
  await using stack = await startStack();
  const root = await get(stack, "/", {});
  assert.equal(root.status, 200, withLogs(stack));
  assert.equal(root.body, "computeMetadata/\n");
  for (
    const [path, init, status] of [
      ["/computeMetadata/v1/project/project-id", {}, 403],
      ["/computeMetadata/v1/project/project-id", {
        headers: { ...FLAVOR, "x-forwarded-for": "1.2.3.4" },
      }, 403],
      ["/computeMetadata/v1/project/project-id", { method: "POST", headers: FLAVOR }, 405],
      ["/computeMetadata/v1/nothing-here", { headers: FLAVOR }, 404],
    ] as const
  ) {
    const r = await get(stack, path, init);
    assert.equal(r.status, status, `${path} ${JSON.stringify(init)}`);
    assert.equal(r.headers.get("metadata-flavor"), "Google");
    assert.equal(r.headers.get("server"), "Metadata Server for VM");
  }
  const redirect = await get(stack, "/computeMetadata/v1/instance?recursive=true");
  assert.equal(redirect.status, 301);
  assert.equal(
    redirect.headers.get("location"),
    `http://${stack.proxyHostPort}/computeMetadata/v1/instance/?recursive=true`,
  );
  assert.equal(redirect.headers.get("metadata-flavor"), "Google");

  const num = await get(stack, "/computeMetadata/v1/project/numeric-project-id");
  assert.equal(num.status, 200, num.body + withLogs(stack));
  assert.match(num.body, /^\d+$/);
  const email = await get(stack, `${SA_PATH}/email`);
  assert.equal(email.body, DEV_SA);
  const byEmail = await get(
    stack,
    `/computeMetadata/v1/instance/service-accounts/${DEV_SA}/?recursive=true`,
  );
  assert.equal(byEmail.headers.get("content-type"), "application/json");
  assert.equal(JSON.parse(byEmail.body).email, DEV_SA);
  const universe = await get(stack, "/computeMetadata/v1/universe/universe_domain");
  assert.equal(universe.body, "googleapis.com");
  const instance = JSON.parse(
    (await get(stack, "/computeMetadata/v1/instance/?recursive=true")).body,
  );
  assert.equal(instance.zone, `projects/${num.body}/zones/us-central1-a`);

  const token = await get(
    stack,
    `${SA_PATH}/token?scopes=https://www.googleapis.com/auth/devstorage.read_only,https://www.googleapis.com/auth/userinfo.email&extra=1`,
  );
  assert.equal(token.status, 200, token.body + withLogs(stack));
  assert.equal(token.headers.get("content-type"), "application/json");
  const t = JSON.parse(token.body);
  assert.ok(t.expires_in > 300);
  const issued = stack.fake.issued().find((i) => i.token === t.access_token);
  assert.deepEqual(issued?.scopes.toSorted(), [
    "https://www.googleapis.com/auth/devstorage.read_only",
    "https://www.googleapis.com/auth/userinfo.email",
  ]);

  const noAudience = await get(stack, `${SA_PATH}/identity`);
  assert.equal(noAudience.status, 400);
  const id = await get(
    stack,
    `${SA_PATH}/identity?audience=https://svc.example.com/x?a=b&format=full&licenses=FALSE`,
  );
  assert.equal(id.status, 200, id.body + withLogs(stack));
  const claims = JSON.parse(atob(id.body.split(".")[1]!.replaceAll("-", "+").replaceAll("_", "/")));
  assert.equal(claims.aud, "https://svc.example.com/x?a=b");
  assertNoSecrets(stack.logs(), stack.fake, "gate/proxy logs");
});

Deno.test("proxy: 5000 token requests cost one gate call", async () => {
  await using stack = await startStack();
  const url = `http://${stack.proxyHostPort}${SA_PATH}/token`;
  const tokens = new Set<string>();
  await Promise.all(Array.from({ length: 20 }, async () => {
    for (let i = 0; i < 250; i++) {
      const res = await fetch(url, { headers: FLAVOR });
      assert.equal(res.status, 200);
      tokens.add((await res.json()).access_token);
    }
  }));
  assert.equal(tokens.size, 1);
  assert.equal(stack.fake.count(/:generateAccessToken$/), 1);
});

Deno.test("proxy: with the gate gone, a valid cached token is still served; otherwise 503", async () => {
  await using stack = await startStack();
  const first = await get(stack, `${SA_PATH}/token`);
  assert.equal(first.status, 200, withLogs(stack));
  stack.gate.kill("SIGTERM");
  await stack.gate.status;
  const again = await get(stack, `${SA_PATH}/token`);
  assert.equal(again.status, 200);
  assert.equal(JSON.parse(again.body).access_token, JSON.parse(first.body).access_token);
  const other = await get(
    stack,
    `${SA_PATH}/token?scopes=https://www.googleapis.com/auth/devstorage.read_only`,
  );
  assert.equal(other.status, 503);
  assert.equal(other.headers.get("metadata-flavor"), "Google");
  assert.match(other.body, /^Service Unavailable: .*gate.*\n$/);
  assert.equal(other.body.trim().split("\n").length, 1);
  // Still serving.
  assert.equal((await get(stack, "/", {})).status, 200);
});

Deno.test("proxy: ETag and a bounded wait_for_change", async () => {
  await using stack = await startStack();
  const first = await get(stack, "/computeMetadata/v1/project/project-id");
  const etag = first.headers.get("etag");
  assert.match(etag ?? "", /^[0-9a-f]{16}$/);
  const waited = await get(
    stack,
    `/computeMetadata/v1/project/project-id?wait_for_change=true&last_etag=${etag}&timeout_sec=1`,
  );
  assert.equal(waited.status, 200);
  assert.equal(waited.body, first.body);
  assert.equal(waited.headers.get("etag"), etag);
});

Deno.test("proxy: `env` prints the variables to export; bad commands exit 2", async () => {
  const env = await run("gcp-metadata-proxy", ["env", "--port", "9123"]);
  assert.equal(env.code, 0, env.stderr);
  for (const v of ["GCE_METADATA_HOST", "GCE_METADATA_IP", "GCE_METADATA_ROOT"]) {
    assert.match(env.stdout, new RegExp(`^export ${v}=127\\.0\\.0\\.1:9123$`, "m"));
  }
  assert.match(env.stdout, /^export NO_PROXY=127\.0\.0\.1,localhost/m);
  const bad = await run("gcp-metadata-proxy", ["serve-everything"]);
  assert.equal(bad.code, 2);
  assert.equal(bad.stdout, "");
  assert.doesNotMatch(bad.stderr, /\bat \S+:\d+/); // no stack trace
});

Deno.test("proxy: without service_account in its config, reports the account its tokens belong to", async () => {
  await using stack = await startStack({ proxy: false });
  const cfg = `${stack.home}/container.toml`;
  // What a devcontainer has: the socket and nothing else.
  Deno.writeTextFileSync(cfg, `socket_path = "${stack.socketPath}"\nport = 0\n`);
  await using proxy = await start("gcp-metadata-proxy", ["--config", cfg], {
    env: baseEnv(stack.home),
    ready: /listening on http:\/\/(127\.0\.0\.1:\d+)/,
  });
  const hostPort = (await proxy.waitFor(/listening on http:\/\/(127\.0\.0\.1:\d+)/))[1];
  const res = await fetch(`http://${hostPort}${SA_PATH}/email`, { headers: FLAVOR });
  assert.equal(await res.text(), DEV_SA, proxy.output() + withLogs(stack));
  const project = await fetch(`http://${hostPort}/computeMetadata/v1/project/project-id`, {
    headers: FLAVOR,
  });
  assert.equal(await project.text(), "demo-project");
});
