/**
 * The terminal prompt as a person meets it: the built gate runs in a tmux
 * pane (a real terminal), a client asks for prod access, and the test reads
 * the pane (capture-pane) and types into it (send-keys).
 */
import assert from "node:assert/strict";
import { isGateError } from "../shared/errors.ts";
import { createGateClient } from "../shared/gate_client.ts";
import type { SessionResponse } from "../shared/protocol.ts";
import { startFakeGoogle } from "./fakes/google.ts";
import { baseEnv, BIN, DEV_SA, hasCommand, run, tempDir } from "./_utils.ts";

const SECRET = "hunter2-terminal-secret";

interface TmuxGate extends AsyncDisposable {
  socketPath: string;
  pane(): Promise<string>;
  type(text: string): Promise<void>;
}

/** Starts fake Google + the built gate inside a private tmux server. */
async function startTmuxGate(toml: string): Promise<TmuxGate> {
  const dir = tempDir();
  const fake = await startFakeGoogle();
  const home = dir.path;
  const tmuxSock = `${home}/tmux.sock`;
  const tmux = (args: string[]) =>
    run("tmux", ["-S", tmuxSock, ...args], {
      command: "tmux",
      env: { PATH: "/usr/bin:/bin", TERM: "xterm", HOME: home },
    });
  const cleanup = async (): Promise<void> => {
    await tmux(["kill-server"]);
    await fake.close();
    await dir[Symbol.asyncDispose]();
  };
  try {
    Deno.writeTextFileSync(`${home}/adc.json`, fake.adcJson(), { mode: 0o600 });
    Deno.mkdirSync(`${home}/run`, { mode: 0o700 });
    Deno.chmodSync(`${home}/run`, 0o700);
    const socketPath = `${home}/run/gcp-gate/gate.sock`;
    const config = `${home}/gate.toml`;
    Deno.writeTextFileSync(
      config,
      [
        `project_id = "demo-project"`,
        `service_account = "${DEV_SA}"`,
        `socket_path = "${socketPath}"`,
        `credentials_file = "${home}/adc.json"`,
        `approval_methods = "terminal"`,
        `denial_cooldown_seconds = 0`,
        toml,
        fake.endpointsToml(),
      ].join("\n"),
    );
    const env = Object.entries(baseEnv(home)).map(([k, v]) => `'${k}=${v.replaceAll("'", "")}'`);
    const cmd = `exec env -i ${env.join(" ")} '${BIN}/gcp-gate' --config '${config}'`;
    const started = await tmux(["new-session", "-d", "-s", "gate", "-x", "200", "-y", "60", cmd]);
    assert.equal(started.code, 0, started.stderr);
    const gate: TmuxGate = {
      socketPath,
      pane: async () =>
        (await tmux(["capture-pane", "-p", "-J", "-S", "-200", "-t", "gate"])).stdout,
      type: async (text) => {
        await tmux(["send-keys", "-t", "gate", "-l", text]);
        await tmux(["send-keys", "-t", "gate", "Enter"]);
      },
      [Symbol.asyncDispose]: cleanup,
    };
    await waitPane(gate, /ready: listening on/);
    return gate;
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function waitPane(gate: TmuxGate, re: RegExp, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let text = "";
  while (Date.now() < deadline) {
    text = await gate.pane();
    if (re.test(text)) return text;
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`pane never showed ${re}; it shows:\n${text}`);
}

function ask(gate: TmuxGate, command: string[] | undefined): Promise<SessionResponse | Error> {
  const client = createGateClient({ socketPath: gate.socketPath, timeoutMs: 60_000 });
  return client.openSession({
    ...(command ? { command } : {}),
    reason: "rotate keys",
    ttl_seconds: 3600,
  })
    .then((lease) => {
      lease.close();
      return lease.session;
    }, (e: Error) => e).finally(() => client.close());
}

/** Counts prompts so each step waits for its own. */
function prompts(pane: string): number {
  return pane.split('Type "yes" to allow').length - 1 + pane.split("Allow? [y/N]").length - 1;
}

Deno.test({
  name: "terminal: the prompt shows the request; yes approves, y (with a command) and no deny",
  ignore: !hasCommand("tmux"),
  async fn() {
    await using gate = await startTmuxGate("");
    // Typed before any request: must not answer the next prompt.
    await gate.type("yes");

    const first = ask(gate, ["kubectl", "delete", "pod", "x", `--token=${SECRET}`]);
    let pane = await waitPane(gate, /Type "yes" to allow/);
    for (
      const want of [
        /Who:\s+engineer@example\.com/,
        /Project:\s+demo-project/,
        /Scopes:\s+https:\/\/www\.googleapis\.com\/auth\/cloud-platform/,
        /Lifetime:\s+1 h \(3600 s\)/,
        /Reason:\s+rotate keys/,
        /1\s+kubectl\n\s+2\s+delete\n\s+3\s+pod\n\s+4\s+x\n\s+5\s+--token=\[REDACTED\]/,
      ]
    ) assert.match(pane, want);
    assert.ok(!pane.includes(SECRET), "the terminal shows the caller's secret");
    // The typed-ahead "yes" was discarded: the request is still waiting.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await Promise.race([first, Promise.resolve("waiting")]), "waiting");
    await gate.type("yes");
    const ok = await first;
    assert.ok(!(ok instanceof Error), `not approved: ${ok}\n${await gate.pane()}`);
    assert.match(ok.session_id, /\S/);

    const second = ask(gate, ["rm", "-rf", "/data"]);
    pane = await waitPane(gate, /Type "yes" to allow[\s\S]*Type "yes" to allow/);
    await gate.type("y");
    const denied = await second;
    assert.ok(isGateError(denied, "denied"), `expected denied, got ${denied}`);
    assert.equal(denied.status, 403);

    const third = ask(gate, ["ls"]);
    await waitPane(gate, /(Type "yes" to allow[\s\S]*){3}/);
    await gate.type("no");
    assert.ok(isGateError(await third, "denied"));
    assert.equal(prompts(await gate.pane()), 3);
  },
});

Deno.test({
  name: "terminal: unanswered → denied at dialog_timeout_seconds",
  ignore: !hasCommand("tmux"),
  async fn() {
    await using gate = await startTmuxGate("dialog_timeout_seconds = 5");
    const began = Date.now();
    const asked = ask(gate, undefined);
    await waitPane(gate, /Allow\? \[y\/N\]/);
    const res = await asked;
    assert.ok(isGateError(res, "denied"), `expected denied, got ${res}`);
    assert.ok(Date.now() - began >= 4500, "denied before the timeout");
    await waitPane(gate, /denied: no answer on the terminal within 5 s/);
  },
});
