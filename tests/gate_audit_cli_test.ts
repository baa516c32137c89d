/**
 * `gcp-gate audit` and `gcp-gate audit verify` through the built launcher, on
 * a log written by the built gate: the viewer's filters and folding, the
 * chain check and its exit codes, and `--follow` on a running gate.
 */
import assert from "node:assert/strict";
import { createGateClient } from "../shared/gate_client.ts";
import {
  approveNext,
  baseEnv,
  QUEUE_PROD_TOML,
  run,
  type Stack,
  start,
  startStack,
} from "./_utils.ts";

function audit(stack: Stack, ...args: string[]): ReturnType<typeof run> {
  return run("gcp-gate", ["audit", ...args, "--config", stack.configPath], {
    env: baseEnv(stack.home),
  });
}

Deno.test("gcp-gate audit shows, filters and verifies the log the gate wrote", async () => {
  await using stack = await startStack({
    proxy: false,
    gateToml: `${QUEUE_PROD_TOML}\naudit_max_bytes = 4096\naudit_keep = 5`,
  });
  const gate = createGateClient({ socketPath: stack.socketPath });
  let prefix: string;
  try {
    for (let i = 0; i < 5; i++) await gate.token(); // one mint, four cache hits
    for (let i = 0; i < 20; i++) await gate.identityToken({ audience: `https://svc-${i}.example` });
    const [lease] = await Promise.all([
      gate.openSession({ command: ["gcloud", "sql", "connect", "prod-db"], code: "K7P-QX2" }),
      approveNext(stack),
    ]);
    prefix = lease.session.session_id.slice(0, 8);
    await gate.deleteSession(lease.session.session_id);
    lease.close();
  } finally {
    gate.close();
  }
  stack.gate.kill("SIGTERM");
  await stack.gate.status;
  const dir = `${stack.home}/.local/state/gcp-gate`;
  assert.ok([...Deno.readDirSync(dir)].some((e) => e.name === "audit.log.1"), "the log rotated");

  const all = await audit(stack);
  assert.equal(all.code, 0, all.stderr);
  const lines = all.stdout.trim().split("\n");
  assert.ok(
    lines.some((l) => /▶ PROD {2}granted +\/session .*\$ gcloud sql connect prod-db/.test(l)),
    all.stdout,
  );
  assert.ok(lines.some((l) => /▶ PROD {2}revoked/.test(l)), all.stdout);
  assert.ok(lines.some((l) => /summary +\/token \(dev\) cached ×4/.test(l)), all.stdout);

  const mine = await audit(stack, "--session", prefix, "--since", "1h");
  assert.deepEqual(
    mine.stdout.trim().split("\n").map((l) => /(granted|revoked)/.exec(l)?.[1]),
    ["granted", "revoked"],
  );
  const revoked = await audit(stack, "--result", "revoked", "--json");
  const records = revoked.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(records.length, 1);
  assert.equal(records[0].session, prefix);
  assert.match(records[0].prev, /^[0-9a-f]{64}$/);
  assert.equal((await audit(stack, "--since", "2999-01-01")).stdout, "");
  const bad = await audit(stack, "--result", "nope");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^gcp-gate: --result "nope": use one or more of/);

  const ok = await audit(stack, "verify");
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(
    ok.stdout,
    /^audit\.log: intact — \d+ lines in \d file\(s\), seq 1–\d+, ends at the recorded head$/m,
  );
  assert.match(ok.stdout, /^audit\.log\.decisions: intact — 2 lines in 1 file\(s\)/m);

  // An approval rewritten as a denial in the decisions file: caught.
  const decisions = `${dir}/audit.log.decisions`;
  const original = Deno.readTextFileSync(decisions);
  Deno.writeTextFileSync(decisions, original.replace('"result":"granted"', '"result":"denied"'));
  const edited = await audit(stack, "verify");
  assert.equal(edited.code, 1);
  assert.match(
    edited.stdout,
    /^audit\.log\.decisions: BROKEN — audit\.log\.decisions line 1 \(seq 1\) was changed/m,
  );
  Deno.writeTextFileSync(decisions, original);
  // The last lines of the main log cut off: caught through the head file.
  const live = `${dir}/audit.log`;
  const text = Deno.readTextFileSync(live).split("\n").filter((l) => l);
  Deno.writeTextFileSync(live, text.slice(0, -1).map((l) => `${l}\n`).join(""));
  const cut = await audit(stack, "verify", "--json");
  assert.equal(cut.code, 1);
  const report = JSON.parse(cut.stdout);
  assert.equal(report.ok, false);
  assert.match(report.logs[0].problem, /^truncated: the last 1 line/);
  assert.equal(report.logs[1].ok, true);
});

Deno.test("gcp-gate audit --follow prints new events as the gate writes them", async () => {
  await using stack = await startStack({ proxy: false });
  const gate = createGateClient({ socketPath: stack.socketPath });
  try {
    await gate.token();
    const dir = `${stack.home}/.local/state/gcp-gate`;
    const written = (): boolean => {
      try {
        return Deno.readTextFileSync(`${dir}/audit.log`).includes("/token");
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 100 && !written(); i++) await new Promise((r) => setTimeout(r, 50));
    await using follow = await start(
      "gcp-gate",
      ["audit", "--follow", "--config", stack.configPath],
      { env: baseEnv(stack.home), ready: /granted +\/token/ },
    );
    await gate.identityToken({ audience: "https://followed.example" });
    await follow.waitFor(/audience https:\/\/followed\.example/, 10_000);
  } finally {
    gate.close();
  }
});
