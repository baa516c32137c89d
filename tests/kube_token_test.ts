/**
 * gcp-kube-token, the built launcher, against a real gate + proxy (fake
 * Google): prints an ExecCredential with the dev token; fails cleanly.
 */
import assert from "node:assert/strict";
import { assertNoSecrets, baseEnv, DEV_SA, run, startStack, tempDir } from "./_utils.ts";

Deno.test("gcp-kube-token prints an ExecCredential with the dev token from the proxy", async () => {
  await using stack = await startStack();
  const execInfo = JSON.stringify({
    kind: "ExecCredential",
    apiVersion: "client.authentication.k8s.io/v1",
    spec: { interactive: false },
  });
  const res = await run("gcp-kube-token", [], {
    env: { ...stack.clientEnv, KUBERNETES_EXEC_INFO: execInfo },
  });
  assert.equal(res.code, 0, `${res.stderr}\n--- logs ---\n${stack.logs()}`);
  assert.equal(res.stderr, "");
  const cred = JSON.parse(res.stdout);
  assert.equal(cred.kind, "ExecCredential");
  assert.equal(cred.apiVersion, "client.authentication.k8s.io/v1");
  const issued = stack.fake.issued().find((t) => t.token === cred.status.token);
  assert.equal(issued?.email, DEV_SA);
  const ahead = Date.parse(cred.status.expirationTimestamp) - Date.now();
  // Built by the child before we read the clock: at most 2 s ahead (exact bounds: unit tests).
  assert.ok(ahead <= 2000 && ahead > -30_000, `expiry ${ahead} ms ahead`);
  assertNoSecrets(stack.logs(), stack.fake, "gate/proxy logs");
});

Deno.test("gcp-kube-token with no proxy: exit 1, one line on stderr, empty stdout", async () => {
  await using home = tempDir();
  // A port nothing listens on: bind one, note it, close it.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const res = await run("gcp-kube-token", [], {
    env: baseEnv(home.path, { GCE_METADATA_HOST: `127.0.0.1:${port}` }),
  });
  assert.equal(res.code, 1);
  assert.equal(res.stdout, "");
  assert.equal(res.stderr.trimEnd().split("\n").length, 1, res.stderr);
  assert.match(
    res.stderr,
    /^gcp-kube-token: cannot reach the metadata proxy at 127\.0\.0\.1:\d+; start gcp-metadata-proxy/,
  );
});

Deno.test("gcp-kube-token relays the gate's refusal as one line", async () => {
  await using stack = await startStack();
  // Stop the gate: the proxy answers 503 with its reason.
  await stack.gate[Symbol.asyncDispose]();
  const res = await run("gcp-kube-token", [], { env: stack.clientEnv });
  assert.equal(res.code, 1, res.stdout);
  assert.equal(res.stdout, "");
  assert.equal(res.stderr.trimEnd().split("\n").length, 1, res.stderr);
  assert.match(
    res.stderr,
    /^gcp-kube-token: the metadata proxy at .* refused the token request \(HTTP 5\d\d\)/,
  );
});

Deno.test("gcp-kube-token never sends the token through HTTP_PROXY", async () => {
  await using stack = await startStack();
  let proxied = 0;
  const trap = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accept = (async () => {
    for await (const c of trap) {
      proxied++;
      c.close();
    }
  })();
  const trapUrl = `http://127.0.0.1:${(trap.addr as Deno.NetAddr).port}`;
  const env = { ...stack.clientEnv, HTTP_PROXY: trapUrl, http_proxy: trapUrl };
  delete (env as Record<string, string>).NO_PROXY;
  const res = await run("gcp-kube-token", [], { env });
  trap.close();
  await accept.catch(() => {});
  assert.equal(res.code, 0, res.stderr);
  assert.equal(proxied, 0);
});
