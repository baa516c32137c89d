/**
 * Acceptance: real Google clients, each a separate process, get credentials
 * from the built gcp-metadata-proxy (backed by the real gate and the fake
 * Google). A client missing on this machine is reported as ignored.
 */
import assert from "node:assert/strict";
import {
  assertNoSecrets,
  DEV_SA,
  hasCommand,
  ROOT,
  run,
  type RunResult,
  type Stack,
  startStack,
  tempDir,
} from "./_utils.ts";
import { FAKE_TOKEN_PREFIX } from "./fakes/google.ts";
import { startFakeKubeApi } from "./fakes/kube_api.ts";

const CLIENTS = `${ROOT}/tests/clients`;
const DEBIAN_PYTHON = "/usr/bin/python3";
const SDK = "/usr/lib/google-cloud-sdk";
const BUNDLED_PYTHON = `${SDK}/platform/bundledpythonunix/bin/python3`;
const AUDIENCE = "https://svc.example.com/api";

function hasPythonModule(
  python: string,
  module: string,
  env: Record<string, string> = {},
): boolean {
  if (!hasCommand(python)) return false;
  const out = new Deno.Command(python, {
    args: ["-c", `import ${module}`],
    env,
    stdout: "null",
    stderr: "null",
  }).outputSync();
  return out.success;
}

function values(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of stdout.matchAll(/^(\w+)=(.*)$/gm)) out[m[1]!] = m[2]!;
  return out;
}

function explain(res: RunResult, stack: Stack): string {
  return `exit ${res.code}\n--- stdout ---\n${res.stdout}\n--- stderr ---\n${res.stderr}\n--- logs ---\n${stack.logs()}`;
}

/** The token is a dev service account token the fake minted by impersonation. */
function assertDevToken(token: string | undefined, stack: Stack): void {
  assert.ok(token?.startsWith(`${FAKE_TOKEN_PREFIX}-sa-`), `not a dev token: ${token}`);
  assert.equal(stack.fake.issued().find((t) => t.token === token)?.email, DEV_SA);
}

function idTokenClaims(jwt: string | undefined): Record<string, unknown> {
  const part = jwt?.split(".")[1] ?? "";
  return JSON.parse(atob(part.replaceAll("-", "+").replaceAll("_", "/")));
}

Deno.test("client: Node google-auth-library 11 (token, project id, ID token)", async () => {
  await using stack = await startStack();
  const res = await run(Deno.execPath(), [
    "run",
    "-A",
    "--quiet",
    `${CLIENTS}/node_metadata.ts`,
    AUDIENCE,
  ], { env: stack.clientEnv, timeoutMs: 60_000 });
  assert.equal(res.code, 0, explain(res, stack));
  const v = values(res.stdout);
  assertDevToken(v.token, stack);
  assert.equal(v.project, "demo-project");
  assert.equal(idTokenClaims(v.id_token).aud, AUDIENCE);
  assertNoSecrets(stack.logs(), stack.fake, "gate/proxy logs");
});

Deno.test({
  name: "client: Debian python3-google-auth (token, project, email)",
  ignore: !hasPythonModule(DEBIAN_PYTHON, "google.auth.compute_engine, requests"),
  fn: async () => {
    await using stack = await startStack();
    const res = await run(DEBIAN_PYTHON, [`${CLIENTS}/python_metadata.py`], {
      env: stack.clientEnv,
      timeoutMs: 60_000,
    });
    assert.equal(res.code, 0, explain(res, stack));
    const v = values(res.stdout);
    assertDevToken(v.token, stack);
    assert.equal(v.project, "demo-project");
    assert.equal(v.email, DEV_SA);
  },
});

Deno.test({
  name: "client: gcloud's bundled Python google-auth 2.x (token, project, ID token)",
  ignore: !hasPythonModule(BUNDLED_PYTHON, "google.auth.compute_engine, requests", {
    PYTHONPATH: `${SDK}/lib/third_party`,
  }),
  fn: async () => {
    await using stack = await startStack();
    const res = await run(BUNDLED_PYTHON, [
      `${CLIENTS}/python_metadata.py`,
      "--id-token",
      AUDIENCE,
    ], {
      env: { ...stack.clientEnv, PYTHONPATH: `${SDK}/lib/third_party` },
      timeoutMs: 60_000,
    });
    assert.equal(res.code, 0, explain(res, stack));
    const v = values(res.stdout);
    assertDevToken(v.token, stack);
    assert.equal(v.project, "demo-project");
    assert.equal(v.email, DEV_SA);
    assert.equal(idTokenClaims(v.id_token).aud, AUDIENCE);
  },
});

Deno.test({
  name: "client: gcloud CLI (print-access-token, print-identity-token, config list)",
  ignore: !hasCommand("gcloud"),
  fn: async () => {
    await using stack = await startStack();
    await using cfg = tempDir("gcloud-config-");
    const env = {
      ...stack.clientEnv,
      CLOUDSDK_CONFIG: cfg.path,
      CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: "true",
      CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: "true",
      CLOUDSDK_CORE_DISABLE_PROMPTS: "1",
    };
    const gcloud = (args: string[]): Promise<RunResult> =>
      run("gcloud", args, { command: "gcloud", env, timeoutMs: 60_000 });
    const token = await gcloud(["auth", "print-access-token"]);
    assert.equal(token.code, 0, explain(token, stack));
    assertDevToken(token.stdout.trim(), stack);
    const id = await gcloud(["auth", "print-identity-token", `--audiences=${AUDIENCE}`]);
    assert.equal(id.code, 0, explain(id, stack));
    assert.equal(idTokenClaims(id.stdout.trim()).aud, AUDIENCE);
    const list = await gcloud(["config", "list", "--format=json"]);
    assert.equal(list.code, 0, explain(list, stack));
    const core = JSON.parse(list.stdout).core ?? {};
    assert.equal(core.account, DEV_SA, explain(list, stack));
    assert.equal(core.project, "demo-project", explain(list, stack));
    assertNoSecrets(stack.logs(), stack.fake, "gate/proxy logs");
  },
});

const GOPATH = "/usr/share/gocode";
const hasGoLibs = hasCommand("go") &&
  hasCommand(`${GOPATH}/src/cloud.google.com/go/compute/metadata/metadata.go`) &&
  hasCommand(`${GOPATH}/src/golang.org/x/oauth2/google/default.go`);

Deno.test({
  name: "client: Go compute/metadata + x/oauth2/google (project, email, token)",
  ignore: !hasGoLibs,
  fn: async () => {
    await using stack = await startStack();
    await using out = tempDir("go-client-");
    const bin = `${out.path}/go_metadata`;
    // GOPATH mode with Debian's packaged sources; the build cache lives under
    // .tmp/ so repeated runs do not rebuild the libraries.
    const build = await run("go", ["build", "-o", bin, "."], {
      command: "go",
      cwd: `${CLIENTS}/go_metadata`,
      env: {
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        HOME: out.path,
        GO111MODULE: "off",
        GOPATH,
        GOCACHE: `${ROOT}/.tmp/gocache`,
      },
      timeoutMs: 120_000,
    });
    assert.equal(build.code, 0, `go build failed:\n${build.stderr}`);
    const res = await run(bin, [], { command: bin, env: stack.clientEnv, timeoutMs: 30_000 });
    assert.equal(res.code, 0, explain(res, stack));
    const v = values(res.stdout);
    assert.equal(v.project, "demo-project");
    assert.equal(v.email, DEV_SA);
    assertDevToken(v.token, stack);
  },
});

Deno.test({
  name: "client: kubectl via gke-gcloud-auth-plugin --use_application_default_credentials",
  ignore: !hasCommand("kubectl") || !hasCommand("gke-gcloud-auth-plugin") || !hasCommand("openssl"),
  fn: async () => {
    await using stack = await startStack();
    await using api = await startFakeKubeApi();
    await using dir = tempDir("kubectl-");
    const kubeconfig = `${dir.path}/config`;
    Deno.writeTextFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{
          name: "c",
          cluster: { server: api.url, "certificate-authority": api.caFile },
        }],
        users: [{
          name: "u",
          user: {
            exec: {
              apiVersion: "client.authentication.k8s.io/v1beta1",
              command: "gke-gcloud-auth-plugin",
              args: ["--use_application_default_credentials"],
              interactiveMode: "Never",
              provideClusterInfo: true,
            },
          },
        }],
        contexts: [{ name: "ctx", context: { cluster: "c", user: "u" } }],
        "current-context": "ctx",
      }),
    );
    const res = await run("kubectl", ["--kubeconfig", kubeconfig, "get", "--raw", "/api"], {
      command: "kubectl",
      env: stack.clientEnv,
      timeoutMs: 60_000,
    });
    assert.equal(res.code, 0, explain(res, stack));
    assert.equal(JSON.parse(res.stdout).kind, "APIVersions");
    const tokens = api.tokens();
    assert.ok(tokens.length > 0, "the API server saw no bearer token");
    assertDevToken(tokens[0], stack);
  },
});
