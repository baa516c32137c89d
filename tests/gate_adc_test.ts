/**
 * Every ADC type the gate supports, through the built launcher against the
 * fake Google: the credential is built from the file alone and its token
 * requests go to the configured endpoints.
 */
import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import { createGateClient } from "../shared/gate_client.ts";
import { assertNoSecrets, DEV_SA, type Stack, startStack, tempDir } from "./_utils.ts";
import { FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, FAKE_REFRESH_TOKEN } from "./fakes/google.ts";

async function pkcs8Pem(): Promise<string> {
  const pair = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
  const der = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const b64 = btoa(String.fromCharCode(...der)).replace(/(.{64})/g, "$1\n");
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

/** Starts a stack whose gate reads `adc` (written before launch, so the launcher sees it). */
async function stackWith(adc: (dir: string) => unknown): Promise<Stack & { dir: string }> {
  const dir = tempDir("gcp-gate-adc-");
  const path = `${dir.path}/adc.json`;
  Deno.writeTextFileSync(path, JSON.stringify(adc(dir.path)), { mode: 0o600 });
  const stack = await startStack({
    proxy: false,
    gateEnv: { GCP_GATE_CREDENTIALS_FILE: path },
  });
  return Object.assign(Object.create(stack), {
    dir: dir.path,
    [Symbol.asyncDispose]: async () => {
      await stack[Symbol.asyncDispose]();
      await dir[Symbol.asyncDispose]();
    },
  });
}

async function devTokenAndEmail(stack: Stack): Promise<{ email: string; token: string }> {
  const gate = createGateClient({ socketPath: stack.socketPath });
  try {
    const t = await gate.token();
    const { email } = await gate.identity();
    return { email, token: t.access_token };
  } finally {
    gate.close();
  }
}

function sourceOfDevMint(stack: Stack): string | undefined {
  const mint = stack.fake.requests.find((r) =>
    r.path.endsWith(`${encodeURIComponent(DEV_SA)}:generateAccessToken`)
  );
  const bearer = /^Bearer (.+)$/.exec(mint?.headers.authorization ?? "")?.[1];
  return stack.fake.issued().find((t) => t.token === bearer)?.email;
}

Deno.test("ADC service_account key: a signed JWT-bearer grant at the configured oauth2 endpoint", async () => {
  const key = await pkcs8Pem();
  const email = "sa-key@demo-project.iam.gserviceaccount.com";
  await using stack = await stackWith(() => ({
    type: "service_account",
    client_email: email,
    private_key: key,
    private_key_id: "k1",
    token_uri: "https://oauth2.googleapis.com/token",
  }));
  const got = await devTokenAndEmail(stack);
  assert.equal(got.email, email, "the key's own email, without a tokeninfo call");
  const grant = stack.fake.requests.find((r) => r.path === "/oauth2/token")!;
  const form = new URLSearchParams(grant.body);
  assert.equal(form.get("grant_type"), "urn:ietf:params:oauth:grant-type:jwt-bearer");
  const claims = JSON.parse(
    atob(form.get("assertion")!.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")),
  );
  assert.equal(claims.iss, email);
  assert.equal(claims.aud, "https://oauth2.googleapis.com/token");
  assert.equal(sourceOfDevMint(stack), email);
  const all = stack.logs() +
    JSON.stringify(stack.fake.requests.filter((r) => r.path !== "/oauth2/token"));
  assert.ok(!all.includes("PRIVATE KEY"), "the key goes nowhere");
});

Deno.test("ADC impersonated_service_account: the source user impersonates the target", async () => {
  const target = "imp@demo-project.iam.gserviceaccount.com";
  await using stack = await stackWith(() => ({
    type: "impersonated_service_account",
    service_account_impersonation_url:
      `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${target}:generateAccessToken`,
    source_credentials: {
      type: "authorized_user",
      client_id: FAKE_CLIENT_ID,
      client_secret: FAKE_CLIENT_SECRET,
      refresh_token: FAKE_REFRESH_TOKEN,
    },
  }));
  const got = await devTokenAndEmail(stack);
  assert.equal(got.email, target);
  assert.equal(sourceOfDevMint(stack), target, "dev tokens are minted as the impersonated account");
  assert.equal(stack.fake.count(/generateAccessToken$/), 2);
  assertNoSecrets(stack.logs(), stack.fake, "gate log");
});

Deno.test("ADC external_account (file-sourced): STS exchange, then service account impersonation", async () => {
  const target = "wif@demo-project.iam.gserviceaccount.com";
  await using stack = await stackWith((dir) => {
    Deno.writeTextFileSync(`${dir}/subject.jwt`, "header.subject-token-from-file.sig\n");
    return {
      type: "external_account",
      audience:
        "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x",
      subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
      token_url: "https://sts.googleapis.com/v1/token",
      service_account_impersonation_url:
        `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${target}:generateAccessToken`,
      credential_source: { file: `${dir}/subject.jwt` },
    };
  });
  const got = await devTokenAndEmail(stack);
  assert.equal(got.email, target);
  const sts = stack.fake.requests.find((r) => r.path === "/sts/v1/token")!;
  const form = new URLSearchParams(sts.body);
  assert.equal(form.get("subject_token"), "header.subject-token-from-file.sig");
  assert.equal(form.get("grant_type"), "urn:ietf:params:oauth:grant-type:token-exchange");
  assert.match(form.get("audience") ?? "", /workloadIdentityPools/);
  assert.equal(sourceOfDevMint(stack), target);
});

Deno.test("ADC external_account (URL-sourced, JSON format): fetched with its headers", async () => {
  const seen: Headers[] = [];
  await using tokenServer = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) => {
      seen.push(req.headers);
      return Response.json({ id_token: "header.subject-token-from-url.sig" });
    },
  );
  const port = tokenServer.addr.port;
  await using stack = await stackWith(() => ({
    type: "external_account",
    audience:
      "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x",
    subject_token_type: "urn:ietf:params:oauth:token-type:id_token",
    token_url: "https://sts.googleapis.com/v1/token",
    credential_source: {
      url: `http://127.0.0.1:${port}/token`,
      headers: { "x-sentinel": "yes" },
      format: { type: "json", subject_token_field_name: "id_token" },
    },
  }));
  const got = await devTokenAndEmail(stack);
  assert.equal(
    got.email,
    "federated@example.com",
    "no service account: tokeninfo on the STS token",
  );
  assert.equal(seen[0]?.get("x-sentinel"), "yes");
  const sts = stack.fake.requests.find((r) => r.path === "/sts/v1/token")!;
  assert.equal(
    new URLSearchParams(sts.body).get("subject_token"),
    "header.subject-token-from-url.sig",
  );
  assert.equal(sourceOfDevMint(stack), "federated@example.com");
});

Deno.test("ADC of an unsupported type is a credentials_expired error naming the type", async () => {
  await using stack = await stackWith(() => ({ type: "gdch_service_account" }));
  const gate = createGateClient({ socketPath: stack.socketPath });
  try {
    const err = await gate.token().catch((e) => e);
    assert.ok(err instanceof GateError);
    assert.equal(err.code, "credentials_expired");
    assert.match(err.message, /"gdch_service_account", which the gate does not support/);
    assert.equal(stack.fake.count(/./), 0);
  } finally {
    gate.close();
  }
});
