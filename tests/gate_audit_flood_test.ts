/**
 * The container cannot wipe the host's audit log: rejected prod requests
 * cost it nothing, so their lines are bounded and folded into counted
 * summaries, and prod decisions also live in their own file that junk never
 * rotates.
 */
import assert from "node:assert/strict";
import { createGateClient } from "../shared/gate_client.ts";
import { approveNext, baseEnv, QUEUE_PROD_TOML, run, startStack } from "./_utils.ts";

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
