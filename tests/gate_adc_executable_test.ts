/**
 * Executable-sourced external_account ADC through the built gate: a script
 * standing in for `spire-agent api fetch jwt` prints a JWT-SVID in Google's
 * executable response format; the fake STS accepts only that JWT; the gate
 * then impersonates the workload identity's service account.
 */
import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import { createGateClient } from "../shared/gate_client.ts";
import { DEV_SA, type Stack, startStack, type TempDir, tempDir } from "./_utils.ts";
import { type FakeGoogle, startFakeGoogle } from "./fakes/google.ts";

const WIF_SA = "wif@demo-project.iam.gserviceaccount.com";
const AUDIENCE =
  "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/spiffe/providers/spire";
const TRUST_DOMAIN = "spiffe://example.org";
const JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt";

function b64url(s: string): string {
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

/** A JWT-SVID-shaped token (the fake STS checks its claims, not a signature). */
function svid(id: string, expSeconds: number): string {
  const now = Math.floor(Date.now() / 1000);
  return [
    b64url(JSON.stringify({ alg: "ES256", kid: "spire", typ: "JWT" })),
    b64url(
      JSON.stringify({
        sub: `${TRUST_DOMAIN}/ns/dev/sa/${id}`,
        aud: [AUDIENCE],
        exp: now + expSeconds,
      }),
    ),
    b64url(`FAKE-SPIRE-SIG-${crypto.randomUUID()}`),
  ].join(".");
}

/** The fake STS: a JWT-SVID of our trust domain for our audience, unexpired. */
function acceptSvid(token: string, form: URLSearchParams): string | undefined {
  try {
    const claims = JSON.parse(atob(token.split(".")[1]!.replaceAll("-", "+").replaceAll("_", "/")));
    const ok = String(claims.sub).startsWith(`${TRUST_DOMAIN}/`) &&
      claims.aud?.includes(form.get("audience")) && claims.exp * 1000 > Date.now() &&
      form.get("subject_token_type") === JWT_TYPE;
    return ok ? `principal:${claims.sub}` : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The stand-in for spire-agent: what it does is chosen by the file `mode`
 * (ok, fail, refuse, hang); it records each run and the Google variables it got.
 */
const SPIRE_STUB = `#!/bin/sh
set -eu
dir=$(dirname "$0")
echo run >> "$dir/runs"
env | grep '^GOOGLE_EXTERNAL_ACCOUNT_' | sort > "$dir/env.out" || true
case $(cat "$dir/mode") in
  ok)
    answer=$(printf '{"version":1,"success":true,"token_type":"${JWT_TYPE}","id_token":"%s","expiration_time":%d}' "$(cat "$dir/svid.jwt")" $(( $(date +%s) + 600 )))
    [ -z "\${GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE:-}" ] || printf '%s\\n' "$answer" > "$GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE"
    printf '%s\\n' "$answer" ;;
  fail) echo "spire-agent: connection to the agent socket refused" >&2; exit 3 ;;
  refuse) printf '{"version":1,"success":false,"code":"401","message":"workload not attested"}\\n' ;;
  hang) sleep 8 ;;
esac
`;

interface ExeStack extends AsyncDisposable {
  readonly stack: Stack;
  readonly fake: FakeGoogle;
  readonly dir: string;
  readonly jwt: string;
  setMode(mode: "ok" | "fail" | "refuse" | "hang"): void;
  runs(): number;
  token(): Promise<string>;
}

interface ExeOptions {
  optIn?: boolean;
  timeoutMillis?: number;
  outputFile?: boolean;
  /** Written to the output file before the gate starts. */
  cached?: string;
}

async function exeStack(options: ExeOptions = {}): Promise<ExeStack> {
  const dir: TempDir = tempDir("gcp-gate-exe-");
  const d = dir.path;
  const jwt = svid("app", 600);
  Deno.writeTextFileSync(`${d}/svid.jwt`, jwt);
  Deno.writeTextFileSync(`${d}/mode`, "ok");
  Deno.writeTextFileSync(`${d}/spire-agent`, SPIRE_STUB, { mode: 0o755 });
  Deno.chmodSync(`${d}/spire-agent`, 0o755);
  const out = `${d}/cache/svid-response.json`;
  Deno.mkdirSync(`${d}/cache`);
  if (options.cached !== undefined) Deno.writeTextFileSync(out, options.cached);
  Deno.writeTextFileSync(
    `${d}/adc.json`,
    JSON.stringify({
      type: "external_account",
      audience: AUDIENCE,
      subject_token_type: JWT_TYPE,
      token_url: "https://sts.googleapis.com/v1/token",
      service_account_impersonation_url:
        `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${WIF_SA}:generateAccessToken`,
      credential_source: {
        executable: {
          command: `${d}/spire-agent api fetch jwt -audience ${AUDIENCE}`,
          ...(options.timeoutMillis ? { timeout_millis: options.timeoutMillis } : {}),
          ...(options.outputFile ? { output_file: out } : {}),
        },
      },
    }),
  );
  const fake = await startFakeGoogle({ iam: { federation: acceptSvid } });
  let stack: Stack;
  try {
    stack = await startStack({
      fake,
      proxy: false,
      gateEnv: {
        GCP_GATE_CREDENTIALS_FILE: `${d}/adc.json`,
        ...(options.optIn === false ? {} : { GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES: "1" }),
      },
    });
  } catch (err) {
    await fake.close();
    await dir[Symbol.asyncDispose]();
    throw err;
  }
  return {
    stack,
    fake,
    dir: d,
    jwt,
    setMode: (mode) => Deno.writeTextFileSync(`${d}/mode`, mode),
    runs: () => {
      try {
        return Deno.readTextFileSync(`${d}/runs`).split("\n").filter((l) => l).length;
      } catch {
        return 0;
      }
    },
    async token() {
      const gate = createGateClient({ socketPath: stack.socketPath, timeoutMs: 20_000 });
      try {
        return (await gate.token()).access_token;
      } finally {
        gate.close();
      }
    },
    async [Symbol.asyncDispose]() {
      try {
        // The SVID is a credential too: it goes to STS and nowhere else.
        assert.ok(!stack.logs().includes(jwt), "the gate's output shows the JWT-SVID");
      } finally {
        await stack[Symbol.asyncDispose]();
        await fake.close();
        await dir[Symbol.asyncDispose]();
      }
    },
  };
}

function stsSubjects(fake: FakeGoogle): (string | null)[] {
  return fake.requests.filter((r) => r.path === "/sts/v1/token").map((r) =>
    new URLSearchParams(r.body).get("subject_token")
  );
}

const gateError = (re: RegExp) => (e: unknown): boolean => {
  assert.ok(e instanceof GateError, String(e));
  assert.match(e.message, re);
  return true;
};

Deno.test("executable source: the SPIFFE JWT goes to STS, then the workload's service account is impersonated", async () => {
  await using s = await exeStack({ outputFile: true });
  const token = await s.token();
  assert.deepEqual(stsSubjects(s.fake), [s.jwt]);
  const sts = new URLSearchParams(s.fake.requests.find((r) => r.path === "/sts/v1/token")!.body);
  assert.equal(sts.get("audience"), AUDIENCE);
  assert.equal(sts.get("subject_token_type"), JWT_TYPE);
  // The federated token impersonates WIF_SA, which mints the dev token.
  const minted = s.fake.issued().find((t) => t.token === token)!;
  assert.equal(minted.email, DEV_SA);
  const devMint = s.fake.requests.find((r) =>
    r.path.includes(`${encodeURIComponent(DEV_SA)}:generateAccessToken`)
  )!;
  const source = s.fake.issued().find((t) => `Bearer ${t.token}` === devMint.headers.authorization);
  assert.equal(source?.email, WIF_SA);
  // Google's variables, exactly (the opt-in is inherited from the gate's environment).
  assert.equal(
    Deno.readTextFileSync(`${s.dir}/env.out`),
    [
      "GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1",
      `GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE=${AUDIENCE}`,
      `GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL=${WIF_SA}`,
      "GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE=0",
      `GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE=${s.dir}/cache/svid-response.json`,
      `GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE=${JWT_TYPE}`,
      "",
    ].join("\n"),
  );
  assert.equal(s.runs(), 1);
});

Deno.test("executable source: a non-zero exit names the code and stderr; the next request recovers", async () => {
  await using s = await exeStack();
  s.setMode("fail");
  await assert.rejects(
    s.token(),
    gateError(
      /spire-agent exited with code 3 \(stderr: spire-agent: connection to the agent socket refused\)/,
    ),
  );
  assert.equal(s.fake.count(/\/sts\//), 0);
  s.setMode("ok");
  await s.token();
  assert.deepEqual(stsSubjects(s.fake), [s.jwt]);
});

Deno.test("executable source: success:false with a code is reported as the program said it", async () => {
  await using s = await exeStack();
  s.setMode("refuse");
  await assert.rejects(s.token(), gateError(/reported failure: code 401: workload not attested/));
  assert.equal(s.fake.count(/\/sts\//), 0);
});

Deno.test("executable source: a program that outlives timeout_millis is killed and reported", async () => {
  await using s = await exeStack({ timeoutMillis: 5000 });
  s.setMode("hang");
  const t0 = Date.now();
  await assert.rejects(s.token(), gateError(/did not finish within 5000 ms \(timeout_millis\)/));
  assert.ok(Date.now() - t0 < 7500, `answered after ${Date.now() - t0} ms`);
  assert.equal(s.fake.count(/\/sts\//), 0);
});

Deno.test("executable source: an unexpired output_file answer is used; an expired one runs the program", async () => {
  const now = Math.floor(Date.now() / 1000);
  const cachedJwt = svid("cached", 600);
  const response = (jwt: string, exp: number) =>
    JSON.stringify({
      version: 1,
      success: true,
      token_type: JWT_TYPE,
      id_token: jwt,
      expiration_time: exp,
    });
  {
    await using s = await exeStack({ outputFile: true, cached: response(cachedJwt, now + 600) });
    await s.token();
    assert.deepEqual(stsSubjects(s.fake), [cachedJwt]);
    assert.equal(s.runs(), 0, "the program must not run while its cached answer is valid");
  }
  {
    await using s = await exeStack({
      outputFile: true,
      cached: response(svid("old", -60), now - 60),
    });
    await s.token();
    assert.deepEqual(stsSubjects(s.fake), [s.jwt], "the fresh JWT, not the expired one");
    assert.equal(s.runs(), 1);
    const rewritten = JSON.parse(Deno.readTextFileSync(`${s.dir}/cache/svid-response.json`));
    assert.equal(rewritten.id_token, s.jwt, "the program refreshed its cache");
  }
});

Deno.test("executable source: without GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1 nothing runs, one clear error", async () => {
  await using s = await exeStack({ optIn: false });
  await assert.rejects(
    s.token(),
    gateError(
      /names a credential source program \(.*spire-agent\), which runs only when GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1 is set/,
    ),
  );
  assert.equal(s.runs(), 0);
  assert.equal(s.fake.count(/\/sts\//), 0);
});

Deno.test("executable source: the real gate cannot run a program the ADC file names only after it started", async () => {
  await using s = await exeStack();
  const other = `${s.dir}/other-agent`;
  Deno.writeTextFileSync(other, `#!/bin/sh\ntouch "${s.dir}/other-ran"\n`, { mode: 0o755 });
  Deno.chmodSync(other, 0o755);
  const adc = JSON.parse(Deno.readTextFileSync(`${s.dir}/adc.json`));
  adc.credential_source.executable.command = other;
  Deno.writeTextFileSync(`${s.dir}/adc.json`, JSON.stringify(adc));
  await assert.rejects(
    s.token(),
    gateError(
      /the gate may not run the credential source program .*other-agent: .*restart the gate/,
    ),
  );
  assert.throws(() => Deno.statSync(`${s.dir}/other-ran`), Deno.errors.NotFound);
  assert.equal(s.fake.count(/\/sts\//), 0);
});
