import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import {
  executableCommand,
  type ExecutableDeps,
  executableSubjectToken,
  parseExecutableResponse,
  parseExecutableSource,
  type ProgramResult,
  runProgram,
} from "./adc_executable.ts";

const NOW = 1_700_000_000_000;
const JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt";
const bad = (what: string): never => {
  throw new GateError("credentials_expired", what);
};
const ctx = { audience: "//iam/aud", subjectTokenType: JWT_TYPE, impersonatedEmail: "sa@p.iam" };

function ok(token: string, exp?: number): string {
  return JSON.stringify({
    version: 1,
    success: true,
    token_type: JWT_TYPE,
    id_token: token,
    ...(exp === undefined ? {} : { expiration_time: exp }),
  });
}

function deps(
  results: ProgramResult[],
  files: Record<string, string> = {},
): ExecutableDeps & { runs: { argv: readonly string[]; env: Record<string, string> }[] } {
  const runs: { argv: readonly string[]; env: Record<string, string> }[] = [];
  return {
    allowExecutables: true,
    readFile: (p) => files[p],
    now: () => NOW,
    run: (argv, o) => {
      runs.push({ argv, env: o.env });
      return Promise.resolve(results.shift()!);
    },
    runs,
  };
}

const done = (stdout: string, code = 0, stderr = ""): ProgramResult => ({
  code,
  stdout,
  stderr,
  timedOut: false,
});

Deno.test("parseExecutableSource() follows Google's rules for command, timeout and output file", () => {
  assert.deepEqual(executableCommand("  /bin/x  --a=1\t--b "), ["/bin/x", "--a=1", "--b"]);
  const src = parseExecutableSource({ command: "/opt/fetch --aud x" }, bad);
  assert.deepEqual(src, {
    argv: ["/opt/fetch", "--aud", "x"],
    timeoutMs: 30_000,
    outputFile: undefined,
  });
  assert.throws(() => parseExecutableSource({ command: "fetch" }, bad), /absolute path/);
  assert.throws(() => parseExecutableSource({}, bad), /no command/);
  assert.throws(
    () => parseExecutableSource({ command: "/x", timeout_millis: 4999 }, bad),
    /5000…120000/,
  );
  assert.throws(
    () => parseExecutableSource({ command: "/x", timeout_millis: 120001 }, bad),
    /5000…120000/,
  );
  assert.throws(
    () => parseExecutableSource({ command: "/x", output_file: "rel" }, bad),
    /absolute/,
  );
});

Deno.test("parseExecutableResponse() reads OIDC and SAML tokens and refuses malformed answers", () => {
  const o = { program: "/x", requireExpiration: false, now: NOW };
  assert.equal(parseExecutableResponse(ok("h.p.s"), o), "h.p.s");
  assert.equal(
    parseExecutableResponse(
      JSON.stringify({
        version: 1,
        success: true,
        token_type: "urn:ietf:params:oauth:token-type:saml2",
        saml_response: "PHNhbWw+",
      }),
      o,
    ),
    "PHNhbWw+",
  );
  const up = (re: RegExp) => (e: unknown) =>
    e instanceof GateError && e.code === "upstream" && re.test(e.message);
  assert.throws(() => parseExecutableResponse("nope", o), up(/not JSON/));
  assert.throws(() => parseExecutableResponse('{"success":true}', o), up(/no version/));
  assert.throws(
    () => parseExecutableResponse('{"version":2,"success":true}', o),
    up(/unsupported version 2/),
  );
  assert.throws(
    () =>
      parseExecutableResponse(
        '{"version":1,"success":false,"code":"401","message":"Caller not authorized."}',
        o,
      ),
    up(/reported failure: code 401: Caller not authorized\./),
  );
  assert.throws(
    () => parseExecutableResponse('{"version":1,"success":false}', o),
    up(/no code and message/),
  );
  assert.throws(
    () =>
      parseExecutableResponse(JSON.stringify({ version: 1, success: true, token_type: "x" }), o),
    up(/unsupported token_type/),
  );
  assert.throws(
    () => parseExecutableResponse(ok("t"), { ...o, requireExpiration: true }),
    up(/no expiration_time, which is required when output_file is set/),
  );
});

Deno.test("executableSubjectToken() passes Google's variables and returns the token", async () => {
  const d = deps([done(ok("h.p.s", NOW / 1000 + 600))]);
  const src = parseExecutableSource(
    { command: "/opt/fetch --aud x", output_file: "/c/out.json" },
    bad,
  );
  assert.equal(await executableSubjectToken(src, ctx, d), "h.p.s");
  assert.deepEqual(d.runs[0]!.argv, ["/opt/fetch", "--aud", "x"]);
  assert.deepEqual(d.runs[0]!.env, {
    GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: "//iam/aud",
    GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE: JWT_TYPE,
    GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE: "0",
    GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL: "sa@p.iam",
    GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE: "/c/out.json",
  });
});

Deno.test("executableSubjectToken() uses an unexpired cached output and reruns for an expired one", async () => {
  const src = parseExecutableSource({ command: "/opt/fetch", output_file: "/c/out.json" }, bad);
  const fresh = deps([], { "/c/out.json": ok("cached", NOW / 1000 + 60) });
  assert.equal(await executableSubjectToken(src, ctx, fresh), "cached");
  assert.equal(fresh.runs.length, 0);
  for (const stale of [ok("old", NOW / 1000 - 1), ok("no-expiry"), "{broken", ""]) {
    const d = deps([done(ok("new", NOW / 1000 + 600))], { "/c/out.json": stale });
    assert.equal(await executableSubjectToken(src, ctx, d), "new", stale);
    assert.equal(d.runs.length, 1);
  }
  // Nothing on stdout: the program wrote its answer to the output file only.
  let reads = 0;
  const d = {
    ...deps([done("")]),
    readFile: () => (reads++ === 0 ? undefined : ok("from-file", NOW / 1000 + 600)),
  };
  assert.equal(await executableSubjectToken(src, ctx, d), "from-file");
});

Deno.test("executableSubjectToken() failures: opt-in, exit code, timeout, expired answer", async () => {
  const src = parseExecutableSource({ command: "/opt/fetch" }, bad);
  const off = { ...deps([]), allowExecutables: false };
  await assert.rejects(
    executableSubjectToken(src, ctx, off),
    (e: unknown) =>
      e instanceof GateError && e.code === "config" &&
      /GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1/.test(e.message),
  );
  assert.equal(off.runs.length, 0);
  await assert.rejects(
    executableSubjectToken(
      src,
      ctx,
      deps([done(ok("secret-on-stdout"), 3, "agent socket missing\n")]),
    ),
    (e: unknown) =>
      e instanceof GateError &&
      /exited with code 3 \(stderr: agent socket missing\)/.test(e.message) &&
      !e.message.includes("secret-on-stdout"),
  );
  await assert.rejects(
    executableSubjectToken(src, ctx, deps([{ code: -1, stdout: "", stderr: "", timedOut: true }])),
    (e: unknown) =>
      e instanceof GateError && e.code === "timeout" && /within 30000 ms/.test(e.message),
  );
  await assert.rejects(
    executableSubjectToken(src, ctx, deps([done(ok("t", NOW / 1000 - 5))])),
    /printed an expired token/,
  );
});

Deno.test("runProgram() kills a program at its deadline even if a child holds the pipe", async () => {
  const t0 = Date.now();
  const r = await runProgram(["/bin/sh", "-c", "sleep 5"], { env: {}, timeoutMs: 300 });
  assert.equal(r.timedOut, true);
  assert.ok(Date.now() - t0 < 4000, "waited for the grandchild");
  const echo = await runProgram(["/bin/sh", "-c", 'printf %s "$GOOGLE_X"; echo err >&2; exit 4'], {
    env: { GOOGLE_X: "v" },
    timeoutMs: 5000,
  });
  assert.deepEqual(echo, { code: 4, stdout: "v", stderr: "err\n", timedOut: false });
});

Deno.test("runProgram() turns a missing program into one clear line", async () => {
  await assert.rejects(
    runProgram(["/nonexistent/spire-agent"], { env: {}, timeoutMs: 5000 }),
    (e: unknown) =>
      e instanceof GateError && /\/nonexistent\/spire-agent does not exist/.test(e.message),
  );
});
