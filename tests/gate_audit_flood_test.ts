/**
 * The container cannot wipe the host's audit log: rejected prod requests
 * cost it nothing, so their lines are bounded and folded into counted
 * summaries, and prod decisions also live in their own file that junk never
 * rotates.
 */
import assert from "node:assert/strict";
import { createGateClient } from "../shared/gate_client.ts";
import { approveNext, baseEnv, QUEUE_PROD_TOML, run, type Stack, startStack } from "./_utils.ts";

function linesOf(path: string): string[] {
  try {
    return Deno.readTextFileSync(path).split("\n").filter((l) => l !== "");
  } catch {
    return [];
  }
}

Deno.test("1,000 rejected prod requests with 30 KB commands do not rotate an earlier approval out", async () => {
  await using stack = await startStack({
    proxy: false,
    gateToml: `${QUEUE_PROD_TOML}\naudit_max_bytes = 4096\naudit_keep = 1`,
  });
  const dir = `${stack.home}/.local/state/gcp-gate`;
  const gate = createGateClient({ socketPath: stack.socketPath });
  const http = Deno.createHttpClient({ proxy: { transport: "unix", path: stack.socketPath } });
  try {
    const [lease] = await Promise.all([
      gate.openSession({ command: ["gcloud", "sql", "connect", "prod-db"], code: "K7P-QX2" }),
      approveNext(stack),
    ]);
    const session = lease.session;
    // Ended before the flood: its grant and revoke lines are what the junk must not push out.
    await gate.deleteSession(session.session_id);
    lease.close();
    const big = JSON.stringify({
      command: [
        "sh",
        "-c",
        "x".repeat(1999),
        ..."y".repeat(15).split("").map(() => "z".repeat(1999)),
      ],
    });
    assert.ok(big.length > 30_000);
    let rejected = 0;
    for (let round = 0; round < 50; round++) {
      const res = await Promise.all(
        Array.from({ length: 21 }, () =>
          fetch("http://gate.invalid/session", {
            method: "POST",
            client: http,
            headers: {
              "x-gcp-gate-protocol": "1",
              "x-gcp-gate-lease": "1",
              "content-type": "application/json",
            },
            body: big,
            signal: AbortSignal.timeout(1000),
          }).then(async (r) => {
            // A leased request is refused in its event stream (200, then an error event).
            const text = await r.text();
            return text.includes('"code":"rate_limited"') ? 429 : r.status;
          }).catch(() => 0)),
      );
      rejected += res.filter((s) => s === 429).length;
    }
    assert.ok(rejected >= 1000, `${rejected} rejected`);
    stack.gate.kill("SIGTERM");
    await stack.gate.status;

    const files = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    const main = [...linesOf(`${dir}/audit.log.1`), ...linesOf(`${dir}/audit.log`)];
    // 40 arguments of 240 characters at most (what the dialog shows), whatever was sent.
    for (const line of main) assert.ok(line.length < 12 * 1024, `a ${line.length}-byte line`);
    const summary = main.map((l) => JSON.parse(l)).find((l) =>
      l.result === "rate_limited" && typeof l.repeats === "number"
    );
    assert.ok(summary && summary.repeats >= 900, JSON.stringify(summary));
    const decisions = linesOf(`${dir}/audit.log.decisions`).map((l) => JSON.parse(l));
    const granted = decisions.find((l) =>
      l.result === "granted" && l.session === session.session_id.slice(0, 8)
    );
    assert.ok(
      granted,
      `the approval is kept; files: ${files.join(" ")} ${
        Deno.readTextFileSync(`${dir}/audit.log.decisions`).slice(0, 3000)
      }`,
    );
    assert.deepEqual(granted.command, ["gcloud", "sql", "connect", "prod-db"]);
    assert.ok(!decisions.some((l) => l.result === "rate_limited"), "no junk in the decisions file");
    // Rotated out of the main log by the junk, the viewer still shows it (from the decisions file).
    const prefix = session.session_id.slice(0, 8);
    assert.ok(!main.some((l) => l.includes(`"session":"${prefix}"`)), "rotated out of audit.log*");
    const shown = await run("gcp-gate", [
      "audit",
      "--session",
      prefix,
      "--config",
      stack.configPath,
    ], {
      env: baseEnv(stack.home),
    });
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /▶ PROD {2}granted .*\$ gcloud sql connect prod-db/);
    assert.equal(
      (await run("gcp-gate", ["audit", "verify", "--config", stack.configPath], {
        env: baseEnv(stack.home),
      })).code,
      0,
    );
  } finally {
    gate.close();
    http.close();
  }
});

Deno.test("hang-ups are withdrawn (folded), a human's denial after them is kept in full", async () => {
  await using stack = await startStack({
    proxy: false,
    gateToml: `${QUEUE_PROD_TOML}\ndenial_cooldown_seconds = 0\nmax_approvals_per_minute = 20`,
  });
  const dir = `${stack.home}/.local/state/gcp-gate`;
  const gate = createGateClient({ socketPath: stack.socketPath, timeoutMs: 30_000 });
  try {
    // Ask, then hang up once the request is queued: no human decides these.
    for (let i = 0; i < 7; i++) {
      const ac = new AbortController();
      const asking = gate.openSession({ command: ["true"], code: "K7P-QX2" }, { signal: ac.signal })
        .catch((e: unknown) => e);
      await waitPending(stack);
      ac.abort();
      await asking;
      await waitPending(stack, false);
    }
    const asking = gate.openSession({
      command: ["gcloud", "sql", "instances", "delete", "prod-db"],
      code: "Q2X-P7K",
    }).catch((e: unknown) => e);
    const id = await waitPending(stack);
    const denied = await run("gcp-gate", ["deny", id, "--config", stack.configPath], {
      env: baseEnv(stack.home),
    });
    assert.equal(denied.code, 0, denied.stderr);
    await asking;
  } finally {
    gate.close();
  }
  stack.gate.kill("SIGTERM");
  await stack.gate.status;
  const main = linesOf(`${dir}/audit.log`).map((l) => JSON.parse(l));
  const human = main.filter((l) => l.result === "denied");
  assert.equal(human.length, 1, JSON.stringify(main));
  assert.equal(human[0].approval_code, "Q2X-P7K");
  assert.deepEqual(human[0].command, ["gcloud", "sql", "instances", "delete", "prod-db"]);
  assert.equal(main.filter((l) => l.result === "withdrawn" && l.repeats === undefined).length, 5);
  const decisions = linesOf(`${dir}/audit.log.decisions`).map((l) => JSON.parse(l));
  assert.deepEqual(decisions.map((l) => l.result), ["denied"], "hang-ups are not decisions");
  assert.deepEqual(decisions[0].command, ["gcloud", "sql", "instances", "delete", "prod-db"]);
});

/** Waits until a request is (or, with `present` false, is no longer) in the queue; returns its id. */
async function waitPending(stack: Stack, present = true): Promise<string> {
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    const r = await run("gcp-gate", ["pending", "--config", stack.configPath], {
      env: baseEnv(stack.home),
    });
    const id = /^(\S+) {2}\(waiting/m.exec(r.stdout)?.[1];
    if (present && id) return id;
    if (!present && !id) return "";
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the queue did not ${present ? "fill" : "empty"}\n${stack.logs()}`);
}
