import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import type { CoreEndpoints } from "../shared/config.ts";
import { createCredentialProvider } from "./credentials.ts";
import type { GoogleApi } from "./google_api.ts";

const ENDPOINTS: CoreEndpoints = {
  oauth2: "https://oauth2.test",
  iamcredentials: "https://iam.test",
  cloudresourcemanager: "https://crm.test",
  sts: "https://sts.test",
  privilegedaccessmanager: "https://pam.test",
};

function userAdc(refresh: string): string {
  return JSON.stringify({
    type: "authorized_user",
    client_id: "id",
    client_secret: "secret",
    refresh_token: refresh,
  });
}

function setup() {
  const files = new Map<string, { text: string; stamp: string }>();
  const forms: Record<string, string>[] = [];
  let valid = new Set(["r1"]);
  let changes = 0;
  const unused = (): Promise<never> => Promise.reject(new Error("unused"));
  const api: GoogleApi = {
    oauthToken: (_url, form) => {
      forms.push(form);
      if (!valid.has(form.refresh_token ?? "")) {
        return Promise.reject(new GateError("credentials_expired", "400 invalid_grant"));
      }
      return Promise.resolve({ token: `at-${forms.length}`, expiresAt: Date.now() + 3600_000 });
    },
    generateAccessToken: unused,
    generateIdToken: unused,
    tokenEmail: unused,
    projectNumber: unused,
    stsExchange: unused,
    getText: unused,
  };
  const provider = createCredentialProvider({
    api,
    endpoints: ENDPOINTS,
    candidates: ["/a/adc.json", "/b/adc.json"],
    readFile: (p) => files.get(p)?.text,
    stamp: (p) => files.get(p)?.stamp,
    hostname: () => "devbox",
    onChange: () => changes++,
  });
  return {
    provider,
    files,
    forms,
    setValid: (v: string[]) => (valid = new Set(v)),
    changes: () => changes,
  };
}

Deno.test("credentials: missing ADC names every path, the host and the command", async () => {
  const { provider } = setup();
  await assert.rejects(
    provider.token(),
    (e) =>
      e instanceof GateError && e.code === "credentials_expired" &&
      e.message.includes("/a/adc.json or /b/adc.json") &&
      e.message.includes("run on the host devbox: gcloud auth application-default login"),
  );
});

Deno.test("credentials: the first existing candidate wins; its token is cached", async () => {
  const s = setup();
  s.files.set("/b/adc.json", { text: userAdc("r1"), stamp: "1" });
  assert.equal((await s.provider.token()).token, "at-1");
  assert.equal((await s.provider.token()).token, "at-1");
  assert.equal(s.forms.length, 1);
  assert.equal(s.forms[0]!.grant_type, "refresh_token");
  assert.equal(s.provider.current().path, "/b/adc.json");
});

Deno.test("credentials: a refused grant is expired, and the next request re-reads the file", async () => {
  const s = setup();
  s.setValid([]);
  s.files.set("/a/adc.json", { text: userAdc("r1"), stamp: "1" });
  await assert.rejects(
    s.provider.token(),
    (e) =>
      e instanceof GateError && e.code === "credentials_expired" &&
      e.message.includes("/a/adc.json") && e.message.includes("run on the host devbox"),
  );
  assert.equal(s.changes(), 1, "caches were told to reset");
  // gcloud auth application-default login writes a new file.
  s.setValid(["r2"]);
  s.files.set("/a/adc.json", { text: userAdc("r2"), stamp: "2" });
  assert.equal((await s.provider.token()).token, "at-2");
});

Deno.test("credentials: a rewritten file replaces the credential and resets caches", async () => {
  const s = setup();
  s.setValid(["r1", "r2"]);
  s.files.set("/a/adc.json", { text: userAdc("r1"), stamp: "1" });
  await s.provider.token();
  s.files.set("/a/adc.json", { text: userAdc("r2"), stamp: "2" });
  await s.provider.token();
  assert.equal(s.forms.at(-1)!.refresh_token, "r2");
  assert.equal(s.changes(), 1);
});
