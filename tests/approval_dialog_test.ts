/**
 * The desktop dialog as a person meets it: the built gate runs under a real X
 * server (Xvfb), a client asks for prod access, zenity shows the dialog, and
 * xdotool clicks it. The text assertions read the dialog's own text (the
 * `--text` zenity was started with, from /proc — with --no-markup it is
 * exactly what is drawn), and a screenshot is kept as an artifact.
 */
import assert from "node:assert/strict";
import { isGateError } from "../shared/errors.ts";
import { createGateClient } from "../shared/gate_client.ts";
import { PROTOCOL_HEADER, PROTOCOL_VERSION, type TokenResponse } from "../shared/protocol.ts";
import type { SessionLease } from "../shared/session_lease.ts";
import {
  assertNoSecrets,
  baseEnv,
  hasCommand,
  ROOT,
  run,
  type RunningProcess,
  type Stack,
  start,
  startStack,
} from "./_utils.ts";

const HAVE_X = hasCommand("/usr/bin/zenity") && hasCommand("Xvfb") && hasCommand("xdotool");
const SECRET = "hunter2-dialog-secret";
const TITLE = "gcp-gate: allow PRODUCTION access";
/** Where the screenshot lands on every run (dist/ is not committed). */
const ARTIFACT = `${ROOT}/dist/test-artifacts/approval-dialog.png`;

/** Starts Xvfb on a free display (it picks one and reports it with -displayfd). */
async function startXvfb(): Promise<{ proc: RunningProcess; display: string }> {
  const proc = await start("Xvfb", [
    "-displayfd",
    "1",
    "-screen",
    "0",
    "1280x800x24",
    "-nolisten",
    "tcp",
  ], { command: "Xvfb", ready: /^(\d+)$/m });
  const display = `:${(await proc.waitFor(/^(\d+)$/m))[1]}`;
  return { proc, display };
}

async function x(display: string, args: string[], timeoutMs = 20_000): Promise<string> {
  const r = await run("xdotool", args, {
    command: "xdotool",
    env: { PATH: "/usr/bin:/bin", DISPLAY: display },
    timeoutMs,
  });
  if (r.code !== 0) throw new Error(`xdotool ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout.trim();
}

interface Dialog {
  window: string;
  pid: number;
  /** The text the dialog shows. */
  text: string;
}

/** Waits for the approval dialog and reads what it shows. */
async function findDialog(display: string): Promise<Dialog> {
  const window = (await x(display, ["search", "--sync", "--name", TITLE])).split("\n")[0]!;
  const pid = Number(await x(display, ["getwindowpid", window]));
  const argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
  const text = argv.find((a) => a.startsWith("--text="))?.slice("--text=".length) ?? "";
  return { window, pid, text };
}

async function screenshot(display: string, window: string, path: string): Promise<void> {
  Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  const r = await run("import", [
    "-window",
    window,
    "-define",
    "png:exclude-chunks=date,time",
    path,
  ], { command: "import", env: { PATH: "/usr/bin:/bin", DISPLAY: display } });
  assert.equal(r.code, 0, `screenshot failed: ${r.stderr}`);
}

/** Clicks the dialog's Allow button (rightmost, bottom row). */
async function clickAllow(display: string, window: string): Promise<void> {
  const geo = await x(display, ["getwindowgeometry", "--shell", window]);
  const w = Number(/WIDTH=(\d+)/.exec(geo)?.[1]);
  const h = Number(/HEIGHT=(\d+)/.exec(geo)?.[1]);
  await x(display, ["mousemove", "--window", window, String(w - 50), String(h - 25), "click", "1"]);
}

function pidAlive(pid: number): boolean {
  try {
    return !Deno.readTextFileSync(`/proc/${pid}/status`).includes("State:\tZ");
  } catch {
    return false;
  }
}

async function rawProdToken(stack: Stack, signal?: AbortSignal): Promise<Response> {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: stack.socketPath } });
  try {
    const res = await fetch("http://gate.invalid/token?level=prod", {
      client,
      headers: { [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) },
      ...(signal ? { signal } : {}),
    });
    await res.arrayBuffer();
    return new Response(null, { status: res.status });
  } finally {
    client.close();
  }
}

async function dialogStack(display: string, toml = ""): Promise<Stack> {
  return await startStack({
    proxy: false,
    gateEnv: { DISPLAY: display },
    // No queue: a dialog that fails must not hide behind a queued wait.
    gateToml: `approval_methods = "dialog"\n${toml}`,
  });
}

Deno.test({
  name: "dialog: shows who/project/scopes/lifetime/reason/redacted command; Allow → 200 + token",
  ignore: !HAVE_X,
  async fn() {
    const xvfb = await startXvfb();
    await using _x = xvfb.proc;
    await using stack = await dialogStack(xvfb.display);
    const client = createGateClient({ socketPath: stack.socketPath, timeoutMs: 60_000 });
    try {
      const asked = client.openSession({
        command: [
          "gcloud",
          "sql",
          "connect",
          "prod-db",
          `--password=${SECRET}`,
          "DB_TOKEN=abc123secret",
          "--\u202eevil",
        ],
        reason: "restore yesterday's backup (INC-7)",
        scopes: ["https://www.googleapis.com/auth/cloud-platform"],
        ttl_seconds: 1800,
        code: "K7P-QX2",
      }).then((r): SessionLease | Error => r, (e: Error) => e);
      const dialog = await findDialog(xvfb.display);
      await screenshot(xvfb.display, dialog.window, ARTIFACT);
      if (Deno.env.get("GCP_GATE_UPDATE_DOCS") === "1") {
        Deno.copyFileSync(ARTIFACT, `${ROOT}/docs/approval-dialog.png`);
      }
      const t = dialog.text;
      for (
        const want of [
          /Who:\s+\S+@\S+/,
          /Project:\s+demo-project/,
          /Scopes:\s+https:\/\/www\.googleapis\.com\/auth\/cloud-platform/,
          /Lifetime:\s+30 min \(1800 s\)/,
          /Reason:\s+restore yesterday's backup \(INC-7\)/,
          /advisory/,
          /1\s+gcloud\n\s+2\s+sql\n\s+3\s+connect\n\s+4\s+prod-db\n\s+5\s+--password=\[REDACTED\]\n\s+6\s+DB_TOKEN=\[REDACTED\]\n\s+7\s+--evil/,
          /Deny is the default/,
          // The code with-prod printed, prominently (H3).
          /^Code:\s+K7P-QX2 — must match what with-prod printed$/m,
          // No prod_service_account here: the dialog says what is really granted (H2).
          /^Grants:\s+YOUR OWN credentials \(\S+@\S+\) — all your permissions, ~1 h, not revocable early; set prod_service_account/m,
        ]
      ) assert.match(t, want);
      const title = Deno.readTextFileSync(`/proc/${dialog.pid}/cmdline`).split("\0")
        .find((a) => a.startsWith("--title=")) ?? "";
      assert.match(title, /code K7P-QX2/);
      assert.ok(!t.includes(SECRET) && !t.includes("abc123secret"), `dialog shows a secret:\n${t}`);
      assert.ok(!t.includes("\u202e"), "dialog shows a bidi override");

      await clickAllow(xvfb.display, dialog.window);
      const res = await asked;
      assert.ok(!(res instanceof Error), `not approved: ${res}\n${stack.logs()}`);
      const token: TokenResponse = await client.token({ session: res.session.session_id });
      assert.match(token.access_token, /\S{10,}/);
      res.close();
      assertNoSecrets(stack.logs(), stack.fake, "gate logs");
    } finally {
      client.close();
    }
  },
});

Deno.test({
  name: "dialog: Deny is the default button (Return) → 403 denied",
  ignore: !HAVE_X,
  async fn() {
    const xvfb = await startXvfb();
    await using _x = xvfb.proc;
    await using stack = await dialogStack(xvfb.display);
    const asked = rawProdToken(stack);
    const dialog = await findDialog(xvfb.display);
    // Not from with-prod: the dialog says there is no code to compare.
    assert.match(dialog.text, /^Code:\s+none \(not from with-prod\)$/m);
    await x(xvfb.display, ["windowfocus", "--sync", dialog.window]);
    await x(xvfb.display, ["key", "Return"]);
    const res = await asked;
    assert.equal(res.status, 403, stack.logs());
    assert.match(stack.logs(), /denied in the desktop dialog/);
  },
});

Deno.test({
  name: "dialog: unanswered → denied at dialog_timeout_seconds; a disconnect closes the dialog",
  ignore: !HAVE_X,
  async fn() {
    const xvfb = await startXvfb();
    await using _x = xvfb.proc;
    await using stack = await dialogStack(
      xvfb.display,
      "dialog_timeout_seconds = 5\ndenial_cooldown_seconds = 0",
    );
    const began = Date.now();
    const timedOut = rawProdToken(stack);
    await findDialog(xvfb.display);
    const res = await timedOut;
    assert.equal(res.status, 403);
    assert.ok(Date.now() - began >= 4500, "denied before the dialog's timeout");
    assert.match(stack.logs(), /timed out after 5 s/);

    // The client goes away: its dialog must disappear (zenity killed), not wait for a click.
    const ac = new AbortController();
    const gone = rawProdToken(stack, ac.signal).catch((e: Error) => e);
    const dialog = await findDialog(xvfb.display);
    ac.abort();
    await gone;
    const deadline = Date.now() + 3000;
    while (pidAlive(dialog.pid) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(!pidAlive(dialog.pid), "the dialog outlived its client");
  },
});

Deno.test({
  name: "dialog: zenity that cannot open the display falls through to the queue (not a denial)",
  ignore: !hasCommand("/usr/bin/zenity"),
  async fn() {
    // A display nobody serves: zenity exits 1 (its Cancel code) with "cannot open display".
    await using stack = await startStack({
      proxy: false,
      gateEnv: { DISPLAY: ":4077" },
      gateToml: 'approval_methods = "dialog,queue"\napproval_timeout_seconds = 30',
    });
    const client = createGateClient({ socketPath: stack.socketPath, timeoutMs: 60_000 });
    try {
      const asked = client.openSession({ command: ["ls"] }).then((lease) => {
        lease.close();
        return lease.session;
      }, (e: Error) => e);
      let id: string | undefined;
      const deadline = Date.now() + 15_000;
      while (!id && Date.now() < deadline) {
        const r = await run("gcp-gate", ["--config", stack.configPath, "pending"], {
          env: baseEnv(stack.home),
        });
        id = /^([0-9a-f]{8})\s+\(waiting/m.exec(r.stdout)?.[1];
        if (!id) await new Promise((res) => setTimeout(res, 200));
      }
      assert.ok(id, `the request never reached the queue:\n${stack.logs()}`);
      const d = await run("gcp-gate", ["--config", stack.configPath, "deny", id], {
        env: baseEnv(stack.home),
      });
      assert.equal(d.code, 0, d.stderr);
      const res = await asked;
      assert.ok(isGateError(res, "denied"));
      assert.match(res.message, /gcp-gate deny/);
    } finally {
      client.close();
    }
  },
});

Deno.test({
  name: "dialog: killing with-prod (a command of 300+ characters) closes its dialog at once",
  ignore: !HAVE_X,
  async fn() {
    const xvfb = await startXvfb();
    await using _x = xvfb.proc;
    await using stack = await dialogStack(xvfb.display, "dialog_timeout_seconds = 120");
    // Long enough that the request body spans several reads at the gate: the
    // case where the request's own disconnect signal never fired.
    const long = `--filter=${"labels.team=payments AND ".repeat(20)}end`;
    await using p = await start("with-prod", ["--", "sh", "-c", "exit 0", "sh", long], {
      env: baseEnv(stack.home, { GCP_GATE_CONFIG: stack.configPath }),
    });
    const dialog = await findDialog(xvfb.display);
    p.kill("SIGKILL");
    await p.status;
    const deadline = Date.now() + 3000;
    while (pidAlive(dialog.pid) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(!pidAlive(dialog.pid), `the dialog outlived its with-prod:\n${stack.logs()}`);
  },
});
