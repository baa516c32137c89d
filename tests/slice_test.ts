/**
 * The foundation's vertical slice: fake Google → gcp-gate → gcp-metadata-proxy
 * → google-auth-library, all real processes started from dist/bin/.
 */
import assert from "node:assert/strict";
import { assertNoSecrets, DEV_SA, ROOT, run, startStack } from "./_utils.ts";
import { FAKE_TOKEN_PREFIX } from "./fakes/google.ts";

Deno.test("google-auth-library gets a dev token through the built proxy and gate", async () => {
  await using stack = await startStack();
  const res = await run(Deno.execPath(), [
    "run",
    "-A",
    "--quiet",
    `${ROOT}/tests/clients/node_token.ts`,
  ], {
    env: stack.clientEnv,
  });
  assert.equal(res.code, 0, `client failed:\n${res.stderr}\n--- logs ---\n${stack.logs()}`);
  const token = /token=(\S+)/.exec(res.stdout)?.[1] ?? "";
  assert.match(token, new RegExp(`^${FAKE_TOKEN_PREFIX.replace(".", "\\.")}-sa-`));
  // The token is the dev service account's, minted by impersonation.
  const issued = stack.fake.issued().find((t) => t.token === token);
  assert.equal(issued?.email, DEV_SA);
  assert.ok(stack.fake.count(/POST \/iam\/.*:generateAccessToken$/) === 1);
  assertNoSecrets(stack.logs(), stack.fake, "gate/proxy logs");
});

Deno.test("the leak scan fails on any secret the fake issued (so every stack test can fail on a leak)", async () => {
  await using stack = await startStack({ proxy: false });
  const { createGateClient } = await import("../shared/gate_client.ts");
  const gate = createGateClient({ socketPath: stack.socketPath });
  const token = (await gate.token()).access_token;
  gate.close();
  assert.throws(() => assertNoSecrets(`log line ${token}`, stack.fake), /leaks a secret/);
  assert.throws(
    () => assertNoSecrets(`x ${stack.fake.secrets().at(-1)}`, stack.fake),
    /leaks a secret/,
  );
  assertNoSecrets("nothing here", stack.fake);
});
