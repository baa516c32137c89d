import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import {
  buildChildEnv,
  type ChildEnvOptions,
  expandValue,
  formatNestingMarker,
  isRemovedVariable,
  NESTING_MARKER,
  parseExtra,
  parseNestingMarker,
  REMOVED_VARIABLES,
} from "./child_env.ts";

const OPTIONS: ChildEnvOptions = {
  proxy: "127.0.0.1:40001",
  configDir: "/tmp/with-prod-x",
  account: "me@example.com",
  project: "prod-project",
  scopes: ["https://www.googleapis.com/auth/cloud-platform"],
  extras: [],
};

Deno.test("buildChildEnv() removes every credential-bearing variable the issue lists", () => {
  const listed = [
    "GOOGLE_APPLICATION_CREDENTIALS",
    "CLOUDSDK_AUTH_ACCESS_TOKEN",
    "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE",
    "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE",
    "CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
    "CPL_GS_BEARER",
    "GOOGLE_API_KEY",
    "GOOGLE_CREDENTIALS",
    "BOTO_CONFIG",
    "CLOUDSDK_AUTH_SOMETHING_NEW",
  ];
  const base: Record<string, string> = { PATH: "/bin", HOME: "/home/me", KEEP_ME: "1" };
  for (const k of [...listed, ...REMOVED_VARIABLES]) base[k] = "secret-value";
  const env = buildChildEnv(base, OPTIONS);
  for (const k of listed) assert.ok(isRemovedVariable(k), k);
  for (const [k, v] of Object.entries(env)) {
    assert.notEqual(v, "secret-value", `${k} survived`);
  }
  assert.equal(env.PATH, "/bin");
  assert.equal(env.KEEP_ME, "1");
});

Deno.test("buildChildEnv() points clients at the temporary proxy and private config", () => {
  const env = buildChildEnv({ NO_PROXY: "corp.example", CLOUDSDK_CONFIG: "/home/me/.gc" }, OPTIONS);
  assert.equal(env.GCE_METADATA_HOST, "127.0.0.1:40001");
  assert.equal(env.GCE_METADATA_IP, "127.0.0.1:40001");
  assert.equal(env.GCE_METADATA_ROOT, "127.0.0.1:40001");
  assert.equal(env.CLOUDSDK_CONFIG, "/tmp/with-prod-x");
  assert.equal(env.CLOUDSDK_CORE_ACCOUNT, "me@example.com");
  for (const k of ["CLOUDSDK_CORE_PROJECT", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"]) {
    assert.equal(env[k], "prod-project", k);
  }
  assert.equal(env.GOOGLE_CLOUD_QUOTA_PROJECT, "prod-project");
  assert.equal(env.NO_PROXY, "127.0.0.1,localhost,corp.example");
  assert.equal(env.no_proxy, "127.0.0.1,localhost");
  const marker = parseNestingMarker(env[NESTING_MARKER]);
  assert.equal(marker?.proxy, "127.0.0.1:40001");
  assert.equal(marker?.project, "prod-project");
});

Deno.test("buildChildEnv() applies -e extras with ${VAR} and ${VAR:-default}", () => {
  const env = buildChildEnv({ HOME: "/home/me", EMPTY: "" }, {
    ...OPTIONS,
    extras: [
      "A=${HOME}/x",
      "B=${MISSING:-fallback}",
      "C=${EMPTY:-used}",
      "D=${MISSING}",
      "E=$HOME stays literal",
      "F=${GOOGLE_CLOUD_PROJECT}",
    ],
  });
  assert.equal(env.A, "/home/me/x");
  assert.equal(env.B, "fallback");
  assert.equal(env.C, "used");
  assert.equal(env.D, "");
  assert.equal(env.E, "$HOME stays literal");
  assert.equal(env.F, "prod-project");
});

Deno.test("-e cannot copy a removed credential back in", () => {
  const env = buildChildEnv({ GOOGLE_APPLICATION_CREDENTIALS: "/keys/sa.json" }, {
    ...OPTIONS,
    extras: ["X=${GOOGLE_APPLICATION_CREDENTIALS}"],
  });
  assert.equal(env.X, "");
});

Deno.test("parseExtra() refuses bad names and credential or managed variables", () => {
  assert.deepEqual(parseExtra("K=a=b"), ["K", "a=b"]);
  assert.deepEqual(parseExtra("K="), ["K", ""]);
  for (const bad of ["K", "=v", "1K=v", "K-X=v"]) {
    assert.throws(() => parseExtra(bad), (e) => e instanceof GateError && e.code === "usage");
  }
  for (
    const managed of [
      "GOOGLE_APPLICATION_CREDENTIALS=x",
      "GCE_METADATA_HOST=x",
      "CLOUDSDK_AUTH_X=1",
    ]
  ) {
    assert.throws(() => parseExtra(managed), (e) => e instanceof GateError && e.code === "usage");
  }
});

Deno.test("expandValue() leaves text without ${…} alone", () => {
  assert.equal(expandValue("a $b ${ c", {}), "a $b ${ c");
});

Deno.test("parseNestingMarker() round-trips and rejects non-loopback proxies", () => {
  const info = {
    proxy: "127.0.0.1:5",
    project: undefined,
    scopes: ["a", "b"],
    configDir: "/d",
    account: "x@y",
  };
  assert.deepEqual(parseNestingMarker(formatNestingMarker(info)), info);
  assert.equal(parseNestingMarker("proxy=evil.example:80&config=/d"), undefined);
  assert.equal(parseNestingMarker("proxy=127.0.0.1:5&config=relative"), undefined);
  assert.equal(parseNestingMarker(undefined), undefined);
});

Deno.test("buildChildEnv() removes variables that redirect gcloud's API calls (and the token)", () => {
  const redirecting = [
    "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE",
    "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE",
    "CLOUDSDK_API_CLIENT_OVERRIDES_STORAGE",
    "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
    "CLOUDSDK_CORE_UNIVERSE_DOMAIN",
    "GOOGLE_CLOUD_UNIVERSE_DOMAIN",
  ];
  const base: Record<string, string> = { SSL_CERT_FILE: "/etc/corp-ca.pem" };
  for (const k of redirecting) base[k] = "https://evil.example/";
  const env = buildChildEnv(base, OPTIONS);
  for (const k of redirecting) {
    assert.equal(env[k], undefined, `${k} survived`);
    assert.throws(() => parseExtra(`${k}=x`), GateError, `-e ${k} accepted`);
  }
  // CA bundles stay: corporate TLS inspection needs them (the README names the risk).
  assert.equal(env.SSL_CERT_FILE, "/etc/corp-ca.pem");
});

Deno.test("buildChildEnv() hands the session's request reason to gcloud & co., printable only", () => {
  const env = buildChildEnv({ CLOUDSDK_CORE_REQUEST_REASON: "stale" }, {
    ...OPTIONS,
    requestReason: "gcp-gate approval abcd1234: fix",
  });
  assert.equal(env.CLOUDSDK_CORE_REQUEST_REASON, "gcp-gate approval abcd1234: fix");
  const bad = buildChildEnv({}, { ...OPTIONS, requestReason: "a\nb" });
  assert.equal(bad.CLOUDSDK_CORE_REQUEST_REASON, undefined);
  assert.throws(
    () => parseExtra("CLOUDSDK_CORE_REQUEST_REASON=mine"),
    /manages credential variables/,
  );
});
