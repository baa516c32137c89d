/**
 * Upstream failures through the built gate: expired or missing ADC become
 * `credentials_expired` with the host and the exact command, a re-login works
 * without a restart, and transient Google errors are retried.
 */
import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import { createGateClient, type GateClient } from "../shared/gate_client.ts";
import { assertNoSecrets, startStack } from "./_utils.ts";

async function failure(p: Promise<unknown>): Promise<GateError> {
  const err = await p.then(() => undefined, (e) => e);
  assert.ok(err instanceof GateError, `expected a GateError, got ${String(err)}`);
  return err;
}

const RELOGIN = /run on the host \S+: gcloud auth application-default login/;

Deno.test("gcp-gate: a revoked ADC grant is credentials_expired, and works again without a restart", async () => {
  await using stack = await startStack({ proxy: false });
  stack.fake.revokeRefreshToken();
  const gate: GateClient = createGateClient({ socketPath: stack.socketPath });
  try {
    const err = await failure(gate.token());
    assert.equal(err.code, "credentials_expired");
    assert.equal(err.status, 401);
    assert.match(err.message, RELOGIN);
    assert.match(err.message, new RegExp(Deno.hostname()));
    assert.match(err.message, /invalid_grant/);
    assert.equal(stack.fake.count(/POST \/oauth2\/token$/), 1, "invalid_grant is not retried");
    // identity and project number report the same thing.
    assert.equal((await failure(gate.identity())).code, "credentials_expired");

    // The engineer logs in again (here: the grant becomes valid again).
    stack.fake.restoreRefreshToken();
    const t = await gate.token();
    assert.ok(t.access_token.length > 0);
    assert.equal((await gate.health()).status, "ok");
  } finally {
    gate.close();
  }
  assertNoSecrets(stack.logs(), stack.fake, "gate log");
});

Deno.test("gcp-gate: a missing ADC file is credentials_expired; writing it fixes the next request", async () => {
  await using stack = await startStack({ proxy: false });
  const adc = `${stack.home}/adc.json`;
  const content = Deno.readTextFileSync(adc);
  Deno.removeSync(adc);
  const gate = createGateClient({ socketPath: stack.socketPath });
  try {
    const err = await failure(gate.token());
    assert.equal(err.code, "credentials_expired");
    assert.match(err.message, /do not exist/);
    assert.match(err.message, RELOGIN);
    Deno.writeTextFileSync(adc, content, { mode: 0o600 });
    assert.ok((await gate.token()).access_token.length > 0);
  } finally {
    gate.close();
  }
});

Deno.test("gcp-gate: 503s from IAM are retried; a 403 is passed on with Google's message", async () => {
  await using stack = await startStack({ proxy: false });
  stack.fake.inject({ match: /:generateAccessToken$/, status: 503, times: 2 });
  const gate = createGateClient({ socketPath: stack.socketPath, timeoutMs: 30_000 });
  try {
    assert.ok((await gate.token()).access_token.length > 0);
    assert.equal(stack.fake.count(/:generateAccessToken$/), 3, "two retries after two 503s");

    stack.fake.inject({
      match: /:generateAccessToken$/,
      status: 403,
      body: {
        error: {
          code: 403,
          status: "PERMISSION_DENIED",
          message: `Permission 'iam.serviceAccounts.getAccessToken' denied\u001b[31m ${
            "x".repeat(2000)
          }`,
        },
      },
    });
    const before = stack.fake.count(/:generateAccessToken$/);
    const err = await failure(gate.token({ ttlSeconds: 900 }));
    assert.equal(err.code, "upstream");
    assert.equal(err.status, 403);
    assert.match(err.message, /PERMISSION_DENIED: Permission 'iam.serviceAccounts.getAccessToken'/);
    assert.ok(!err.message.includes("\u001b"), "control characters are stripped");
    assert.ok(err.message.length <= 500, "Google's message is capped");
    assert.equal(stack.fake.count(/:generateAccessToken$/), before + 1, "a 403 is not retried");
  } finally {
    gate.close();
  }
});
