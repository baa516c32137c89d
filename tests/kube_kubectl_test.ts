/**
 * Acceptance with real kubectl: `kubectl get --raw /api` against a TLS fake
 * API server (tests/fakes/kube_api.ts) through a kubeconfig in gcloud's format
 * patched by the built gcp-kube-setup. The fake records each request's bearer
 * token, so we see exactly which token kubectl sent: the dev token normally,
 * the prod token under with-prod, and never one for the other.
 */
import assert from "node:assert/strict";
import {
  approveNext,
  assertNoSecrets,
  baseEnv,
  BIN,
  DEV_SA,
  hasCommand,
  PROD_SA,
  QUEUE_PROD_TOML,
  ROOT,
  run,
  type Stack,
  start,
  startStack,
} from "./_utils.ts";
import { type FakeKubeApi, startFakeKubeApi } from "./fakes/kube_api.ts";

const HAS_KUBECTL = hasCommand("kubectl");
const GCLOUD = Deno.readTextFileSync(`${ROOT}/tests/fixtures/kubeconfig_gcloud.yaml`);

/** ~/.kube/config = the gcloud fixture with the dev cluster pointed at the fake. */
function writeKubeconfig(home: string, api: FakeKubeApi): string {
  const text = GCLOUD
    .replace("https://34.118.10.20", api.url)
    .replace(/(certificate-authority-data: )\S+/, `$1${btoa(api.caPem)}`);
  Deno.mkdirSync(`${home}/.kube`, { recursive: true });
  Deno.writeTextFileSync(`${home}/.kube/config`, text, { mode: 0o600 });
  return `${home}/.kube/config`;
}

function kubectlEnv(stack: Stack): Record<string, string> {
  return { ...stack.clientEnv, KUBECONFIG: `${stack.home}/.kube/config` };
}

async function setUp(stack: Stack, api: FakeKubeApi): Promise<void> {
  writeKubeconfig(stack.home, api);
  const r = await run("gcp-kube-setup", [], { env: baseEnv(stack.home) });
  assert.equal(r.code, 0, r.stderr);
}

function emailOf(stack: Stack, token: string): string | undefined {
  return stack.fake.issued().find((t) => t.token === token)?.email;
}

Deno.test({
  name: "kubectl sends the dev token after gcp-kube-setup (real kubectl, TLS fake API)",
  ignore: !HAS_KUBECTL,
  fn: async () => {
    await using stack = await startStack();
    await using api = await startFakeKubeApi();
    await setUp(stack, api);
    for (let i = 0; i < 2; i++) {
      const r = await run("kubectl", ["get", "--raw", "/api"], {
        command: "kubectl",
        env: kubectlEnv(stack),
      });
      assert.equal(r.code, 0, `kubectl: ${r.stderr}\n--- logs ---\n${stack.logs()}`);
      assert.equal(JSON.parse(r.stdout).kind, "APIVersions");
    }
    const tokens = api.tokens();
    assert.ok(tokens.length >= 2, `requests: ${tokens.length}`);
    for (const t of tokens) assert.equal(emailOf(stack, t), DEV_SA);
    assertNoSecrets(stack.logs(), stack.fake, "gate/proxy logs");
  },
});

Deno.test({
  name: "kubectl fails with gcp-kube-token's one-line reason when the proxy is down",
  ignore: !HAS_KUBECTL,
  fn: async () => {
    await using stack = await startStack();
    await using api = await startFakeKubeApi();
    await setUp(stack, api);
    await stack.proxy?.[Symbol.asyncDispose]();
    const r = await run("kubectl", ["get", "--raw", "/api"], {
      command: "kubectl",
      env: kubectlEnv(stack),
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /gcp-kube-token: cannot reach the metadata proxy/);
    assert.deepEqual(api.tokens(), []);
  },
});

const WITH_PROD = `${BIN}/with-prod`;

Deno.test({
  name: "kubectl under with-prod sends the prod token; alternating calls never mix",
  ignore: !HAS_KUBECTL || !hasCommand(WITH_PROD),
  fn: async () => {
    await using stack = await startStack({ gateToml: QUEUE_PROD_TOML });
    await using api = await startFakeKubeApi();
    await setUp(stack, api);
    const env = kubectlEnv(stack);
    const rounds = 3;
    // Inside with-prod: kubectl calls tagged ?who=prod-N, one after another,
    // each waiting for the test's go-ahead so they interleave with plain calls.
    const script = [
      `i=1; while [ $i -le ${rounds} ]; do`,
      `  kubectl get --raw "/api?who=prod-$i" >/dev/null || exit 10`,
      `  echo "prod-done-$i"; read _go || exit 11; i=$((i+1))`,
      `done`,
    ].join("\n");
    await using wrapped = await start("with-prod", ["--", "sh", "-c", script], {
      env: { ...env, GCP_GATE_CONFIG: stack.configPath },
      stdin: "piped",
    });
    await approveNext(stack);
    const writer = wrapped.child.stdin.getWriter();
    for (let i = 1; i <= rounds; i++) {
      await wrapped.waitFor(new RegExp(`prod-done-${i}`), 30_000);
      const r = await run("kubectl", ["get", "--raw", `/api?who=dev-${i}`], {
        command: "kubectl",
        env,
      });
      assert.equal(r.code, 0, `kubectl (dev): ${r.stderr}`);
      await writer.write(new TextEncoder().encode("go\n"));
    }
    await writer.close();
    assert.equal((await wrapped.status).code, 0, wrapped.output());
    const seen = api.requests().filter((q) => q.path.includes("who="));
    assert.equal(seen.length, 2 * rounds, JSON.stringify(seen.map((q) => q.path)));
    for (const q of seen) {
      const want = q.path.includes("who=prod") ? PROD_SA : DEV_SA;
      assert.equal(emailOf(stack, q.token), want, `${q.path} carried the wrong token`);
    }
    assertNoSecrets(wrapped.output() + stack.logs(), stack.fake, "with-prod/gate/proxy output");
  },
});
