/**
 * Real clients inside and outside with-prod: inside they get the prod token
 * (the prod service account's), outside the same clients still get the dev
 * token from gcp-metadata-proxy.
 */
import assert from "node:assert/strict";
import {
  approveNext,
  assertNoSecrets,
  baseEnv,
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

const GCLOUD_ENV = {
  CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: "true",
  CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: "true",
};

/** Runs `command` under with-prod (approved) and returns its stdout. */
async function insideWithProd(
  stack: Stack,
  command: string[],
  extra: Record<string, string> = {},
): Promise<string> {
  await using p = await start("with-prod", ["--", ...command], {
    env: baseEnv(stack.home, { GCP_GATE_CONFIG: stack.configPath, ...extra }),
  });
  await approveNext(stack);
  const s = await p.status;
  assert.equal(s.code, 0, `with-prod failed:\n${p.output()}\n--- logs ---\n${stack.logs()}`);
  assertNoSecrets(p.stderr(), stack.fake, "with-prod stderr");
  return p.stdout();
}

function emailOf(stack: Stack, token: string): string | undefined {
  return stack.fake.issued().find((t) => t.token === token)?.email;
}

Deno.test({
  name: "with-prod: gcloud auth print-access-token gets the prod token inside, dev outside",
  ignore: !hasCommand("gcloud"),
  fn: async () => {
    await using stack = await startStack({ gateToml: QUEUE_PROD_TOML });
    const inside =
      (await insideWithProd(stack, ["gcloud", "auth", "print-access-token"], GCLOUD_ENV))
        .trim();
    assert.equal(emailOf(stack, inside), PROD_SA, `inside got ${inside.slice(0, 16)}…`);
    const cfg = Deno.makeTempDirSync();
    try {
      const outside = await run("gcloud", ["auth", "print-access-token"], {
        command: "gcloud",
        env: { ...stack.clientEnv, ...GCLOUD_ENV, CLOUDSDK_CONFIG: cfg },
        timeoutMs: 60_000,
      });
      assert.equal(outside.code, 0, `${outside.stderr}\n${stack.logs()}`);
      assert.equal(emailOf(stack, outside.stdout.trim()), DEV_SA);
    } finally {
      Deno.removeSync(cfg, { recursive: true });
    }
  },
});

Deno.test("with-prod: google-auth-library gets the prod token inside, dev outside", async () => {
  await using stack = await startStack({ gateToml: QUEUE_PROD_TOML });
  const client = ["run", "-A", "--quiet", `${ROOT}/tests/clients/node_token.ts`];
  const inside = await insideWithProd(stack, [Deno.execPath(), ...client]);
  const prodToken = /token=(\S+)/.exec(inside)?.[1] ?? "";
  assert.equal(emailOf(stack, prodToken), PROD_SA);
  const outside = await run(Deno.execPath(), client, { env: stack.clientEnv });
  assert.equal(outside.code, 0, outside.stderr);
  const devToken = /token=(\S+)/.exec(outside.stdout)?.[1] ?? "";
  assert.equal(emailOf(stack, devToken), DEV_SA);
});

Deno.test({
  name: "with-prod: gcloud auth print-access-token inside with-prod returns the prod token",
  ignore: !hasCommand("gcloud"),
  fn: async () => {
    await using stack = await startStack({ gateToml: QUEUE_PROD_TOML, proxy: false });
    // After gcloud ran (and cached whatever it caches), look for the token in
    // every file of the private config directory.
    const script = [
      "t=$(gcloud auth print-access-token) || exit 3",
      'echo "token=$t"',
      'echo "files: $(find "$CLOUDSDK_CONFIG" -type f | wc -l)"',
      'if grep -rlF "$t" "$CLOUDSDK_CONFIG"; then echo "token-on-disk: yes"; else echo "token-on-disk: no"; fi',
    ].join("\n");
    const out = await insideWithProd(stack, ["sh", "-c", script], GCLOUD_ENV);
    const token = /^token=(\S+)$/m.exec(out)?.[1] ?? "";
    assert.equal(emailOf(stack, token), PROD_SA, `inside got ${token.slice(0, 16)}…`);
    assert.match(out, /^files: [1-9]\d*$/m, "the private config was written");
    assert.match(out, /^token-on-disk: no$/m, `a file in CLOUDSDK_CONFIG holds the token:\n${out}`);
  },
});
