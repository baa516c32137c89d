import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import {
  API_V1,
  API_V1BETA1,
  buildExecCredential,
  execApiVersion,
  fetchMetadataToken,
  type MetadataHost,
  parseMetadataHost,
  TOKEN_PATH,
  type TokenDeps,
} from "./token.ts";
import { tokenMain, type TokenMainDeps } from "./token_main.ts";
import { RawHttpError } from "../shared/raw_http.ts";

const HOST: MetadataHost = { hostname: "127.0.0.1", port: 8173, hostPort: "127.0.0.1:8173" };
const NOW = Date.UTC(2030, 0, 2, 3, 4, 5, 600);

function answer(body: string, status = 200, flavor = true): TokenDeps["get"] {
  return () =>
    Promise.resolve({
      status,
      headers: flavor ? { "metadata-flavor": "Google", "content-type": "application/json" } : {},
      body,
    });
}

function deps(get: TokenDeps["get"]): TokenDeps {
  return { get, now: () => NOW };
}

async function rejectsWith(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof GateError, `not a GateError: ${err}`);
    assert.equal(err.code, code);
    assert.match(err.message, re);
    assert.ok(!err.message.includes("\n"), "one line");
    return true;
  });
}

Deno.test("parseMetadataHost() defaults, strips an accidental scheme and refuses paths", () => {
  assert.deepEqual(parseMetadataHost(undefined), HOST);
  assert.deepEqual(parseMetadataHost(""), HOST);
  assert.deepEqual(parseMetadataHost("http://127.0.0.1:8173/"), HOST);
  assert.deepEqual(parseMetadataHost("metadata.google.internal"), {
    hostname: "metadata.google.internal",
    port: 80,
    hostPort: "metadata.google.internal",
  });
  assert.equal(parseMetadataHost("[::1]:9000").port, 9000);
  for (const bad of ["127.0.0.1:8173/x", "a b", "user@host:1", "https://h:1", "h:99999", "h:0"]) {
    assert.throws(
      () => parseMetadataHost(bad),
      (e) => e instanceof GateError && e.code === "config",
    );
  }
});

Deno.test("execApiVersion() mirrors kubectl's apiVersion and defaults to v1beta1", () => {
  assert.equal(execApiVersion(undefined), API_V1BETA1);
  assert.equal(execApiVersion(JSON.stringify({ kind: "ExecCredential" })), API_V1BETA1);
  assert.equal(
    execApiVersion(JSON.stringify({ apiVersion: API_V1, spec: { interactive: false } })),
    API_V1,
  );
  assert.equal(execApiVersion(JSON.stringify({ apiVersion: API_V1BETA1 })), API_V1BETA1);
  assert.throws(
    () => execApiVersion(JSON.stringify({ apiVersion: "client.authentication.k8s.io/v1alpha1" })),
    /set the kubeconfig user's exec apiVersion/,
  );
  assert.throws(() => execApiVersion("{nope"), /not valid JSON/);
});

Deno.test("buildExecCredential() expires 1-2 s ahead, RFC 3339 without fractions", () => {
  const c = buildExecCredential("ya29.x", API_V1, NOW);
  assert.equal(c.kind, "ExecCredential");
  assert.equal(c.apiVersion, API_V1);
  assert.equal(c.status.token, "ya29.x");
  assert.equal(c.status.expirationTimestamp, "2030-01-02T03:04:07Z");
  const ahead = Date.parse(c.status.expirationTimestamp) - NOW;
  assert.ok(ahead >= 1000 && ahead <= 2000, `${ahead} ms ahead`);
});

Deno.test("fetchMetadataToken() asks the default account's token with the flavor header", async () => {
  const seen: { path: string; flavor: string | null }[] = [];
  const t = await fetchMetadataToken(HOST, {
    now: () => NOW,
    get: (_h, path, options) => {
      seen.push({ path, flavor: options.headers["metadata-flavor"] ?? null });
      return answer(JSON.stringify({ access_token: "ya29.tok", expires_in: 100 }))(
        _h,
        path,
        options,
      );
    },
  });
  assert.deepEqual(seen, [{ path: TOKEN_PATH, flavor: "Google" }]);
  assert.equal(t.accessToken, "ya29.tok");
  assert.equal(t.expiresAtMs, NOW + 100_000);
});

Deno.test("fetchMetadataToken() turns each failure into one actionable line", async () => {
  await rejectsWith(
    fetchMetadataToken(HOST, deps(() => Promise.reject(new TypeError("connection refused")))),
    "gate_unreachable",
    /cannot reach the metadata proxy at 127\.0\.0\.1:8173; start gcp-metadata-proxy/,
  );
  await rejectsWith(
    fetchMetadataToken(HOST, deps(answer("prod access denied by engineer\n", 503))),
    "upstream",
    /refused the token request \(HTTP 503\): prod access denied by engineer/,
  );
  await rejectsWith(
    fetchMetadataToken(HOST, deps(answer("nope", 403))),
    "denied",
    /HTTP 403/,
  );
  await rejectsWith(
    fetchMetadataToken(HOST, deps(answer(JSON.stringify({ access_token: "x" }), 200, false))),
    "upstream",
    /not a metadata server/,
  );
  await rejectsWith(
    fetchMetadataToken(HOST, deps(answer("<html>"))),
    "upstream",
    /not JSON/,
  );
  await rejectsWith(
    fetchMetadataToken(HOST, deps(answer(JSON.stringify({ access_token: "a\r\nX-Evil: 1" })))),
    "upstream",
    /without a usable access_token/,
  );
  await rejectsWith(
    fetchMetadataToken(HOST, deps(() => Promise.reject(new RawHttpError("answer too large")))),
    "upstream",
    /sent a bad answer \(answer too large\); is it a metadata server\?/,
  );
});

Deno.test("fetchMetadataToken() gives up after its timeout", async () => {
  const hang: TokenDeps["get"] = (_h, _p, options) =>
    new Promise((_resolve, reject) => {
      options.signal.addEventListener("abort", () => reject(options.signal.reason));
    });
  await rejectsWith(fetchMetadataToken(HOST, deps(hang), 50), "timeout", /did not answer within/);
});

Deno.test("fetchMetadataToken() never echoes a token from an error body", async () => {
  await rejectsWith(
    fetchMetadataToken(HOST, deps(answer("oops ya29.SECRETSECRET", 500))),
    "upstream",
    /\[REDACTED\]/,
  );
});

function mainDeps(
  env: Record<string, string>,
  get: TokenDeps["get"],
): TokenMainDeps & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    env: (n) => env[n],
    get,
    now: () => NOW,
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    out,
    err,
  };
}

Deno.test("tokenMain() prints one ExecCredential and nothing on stderr", async () => {
  const d = mainDeps(
    { KUBERNETES_EXEC_INFO: JSON.stringify({ apiVersion: API_V1 }) },
    answer(JSON.stringify({ access_token: "ya29.ok", expires_in: 3000 })),
  );
  assert.equal(await tokenMain([], d), 0);
  assert.deepEqual(d.err, []);
  const cred = JSON.parse(d.out.join(""));
  assert.equal(cred.apiVersion, API_V1);
  assert.equal(cred.status.token, "ya29.ok");
});

Deno.test("tokenMain() on failure: exit 1, one stderr line, empty stdout", async () => {
  const d = mainDeps({}, () => Promise.reject(new TypeError("refused")));
  assert.equal(await tokenMain([], d), 1);
  assert.deepEqual(d.out, []);
  assert.equal(d.err.length, 1);
  assert.match(d.err[0]!, /^gcp-kube-token: cannot reach .*\n$/);
});

Deno.test("tokenMain() refuses arguments (exit 2) and answers --help/--version", async () => {
  const never: TokenDeps["get"] = () => Promise.reject(new Error("must not fetch"));
  const bad = mainDeps({}, never);
  assert.equal(await tokenMain(["--use_application_default_credentials"], bad), 2);
  assert.match(bad.err.join(""), /remove "args"/);
  const help = mainDeps({}, never);
  assert.equal(await tokenMain(["--help"], help), 0);
  assert.match(help.out.join(""), /GCE_METADATA_HOST/);
  const ver = mainDeps({}, never);
  assert.equal(await tokenMain(["--version"], ver), 0);
  assert.match(ver.out.join(""), /^gcp-kube-token \d/);
});
