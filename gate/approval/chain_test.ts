import assert from "node:assert/strict";
import { isGateError } from "../../shared/errors.ts";
import { createLogger, type Logger } from "../../shared/log.ts";
import { type ApproverConfig, createApprover } from "./chain.ts";
import { createApprovalQueue } from "./queue.ts";
import type { CommandResult, RunCommand } from "./run_command.ts";
import type { LineReader, TerminalDeps } from "./terminal.ts";
import type { ApprovalRequest } from "./types.ts";

const quiet: Logger = createLogger({ write: () => {} });

function request(id = "abcd1234"): ApprovalRequest {
  return {
    id,
    email: "engineer@example.com",
    project: "demo-project",
    scopes: ["https://www.googleapis.com/auth/cloud-platform"],
    ttlSeconds: 3600,
    reason: "deploy",
    command: ["gcloud", "run", "deploy"],
    notes: [],
    kind: "session",
  };
}

function config(over: Partial<ApproverConfig> = {}): ApproverConfig {
  return {
    approval_methods: ["dialog", "terminal", "queue"],
    dialog_timeout_seconds: 60,
    denial_cooldown_seconds: 0,
    max_approvals_per_minute: 10,
    zenity_path: "/usr/bin/zenity",
    osascript_path: "/usr/bin/osascript",
    ...over,
  };
}

function zenity(result: Partial<CommandResult>): { run: RunCommand; calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    run: (path, args) => {
      calls.push([path, ...args]);
      return Promise.resolve({ code: 0, killed: false, stdout: "", stderr: "", ...result });
    },
  };
}

const noTerminal: TerminalDeps = {
  isTerminal: () => false,
  write: () => {},
  lines: { discard: () => {}, next: () => Promise.resolve(undefined) },
};

function terminal(answers: string[]): TerminalDeps & { written: string[] } {
  const written: string[] = [];
  const lines: LineReader = {
    discard: () => {},
    next: () => Promise.resolve(answers.shift()),
  };
  return { isTerminal: () => true, write: (t) => written.push(t), lines, written };
}

Deno.test("createApprover(): an allowed dialog approves, zenity run by absolute path", async () => {
  const z = zenity({ code: 0 });
  const approver = createApprover(config(), {
    log: quiet,
    queue: createApprovalQueue({ timeoutSeconds: 5, log: quiet }),
    env: (n) => (n === "DISPLAY" ? ":1" : undefined),
    os: "linux",
    run: z.run,
    terminal: noTerminal,
  });
  const d = await approver.decide(request(), new AbortController().signal);
  assert.deepEqual(d, {
    approved: true,
    method: "dialog",
    detail: "allowed in the desktop dialog",
  });
  assert.equal(z.calls[0]?.[0], "/usr/bin/zenity");
});

Deno.test("createApprover(): 'cannot open display' falls through to the terminal, not a denial", async () => {
  const z = zenity({ code: 1, stderr: "(zenity:1): Gtk-WARNING **: cannot open display: :9" });
  const t = terminal(["yes"]);
  const approver = createApprover(config(), {
    log: quiet,
    queue: createApprovalQueue({ timeoutSeconds: 5, log: quiet }),
    env: (n) => (n === "DISPLAY" ? ":9" : undefined),
    os: "linux",
    run: z.run,
    terminal: t,
  });
  const d = await approver.decide(request(), new AbortController().signal);
  assert.equal(d.approved, true);
  assert.equal(d.method, "terminal");
  assert.match(t.written.join(""), /Project:\s+demo-project/);
});

Deno.test("createApprover(): zenity's Cancel (exit 1, no display error) is a denial", async () => {
  const approver = createApprover(config(), {
    log: quiet,
    queue: createApprovalQueue({ timeoutSeconds: 5, log: quiet }),
    env: () => ":1",
    os: "linux",
    run: zenity({ code: 1, stderr: "Gtk-Message: GtkDialog mapped without a transient parent" })
      .run,
    terminal: terminal(["yes"]),
  });
  const d = await approver.decide(request(), new AbortController().signal);
  assert.deepEqual(d, {
    approved: false,
    method: "dialog",
    detail: "denied in the desktop dialog",
  });
});

Deno.test("createApprover(): nothing available → approval_unavailable naming each method and why", async () => {
  const approver = createApprover(config({ approval_methods: ["dialog", "terminal"] }), {
    log: quiet,
    queue: createApprovalQueue({ timeoutSeconds: 5, log: quiet }),
    env: () => undefined,
    os: "linux",
    run: zenity({}).run,
    terminal: noTerminal,
  });
  await assert.rejects(approver.decide(request(), new AbortController().signal), (err) => {
    assert.ok(isGateError(err, "approval_unavailable"));
    assert.match(err.message, /dialog: neither DISPLAY nor WAYLAND_DISPLAY is set/);
    assert.match(err.message, /terminal: the gate's stdin\/stderr is not a terminal/);
    assert.match(err.message, /not enabled in approval_methods: queue/);
    return true;
  });
});

Deno.test("createApprover(): a missing zenity is unavailable, and the queue decides", async () => {
  const queue = createApprovalQueue({ timeoutSeconds: 5, log: quiet });
  const approver = createApprover(config(), {
    log: quiet,
    queue,
    env: () => ":1",
    os: "linux",
    run: () => Promise.reject(new Deno.errors.NotFound("no such file")),
    terminal: noTerminal,
  });
  const pending = approver.decide(request("q1"), new AbortController().signal);
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(queue.list().map((p) => p.request.id), ["q1"]);
  assert.equal(queue.decide("q1", true), true);
  assert.equal((await pending).method, "queue");
  assert.equal(queue.list().length, 0);
});

Deno.test("createApprover(): a second request while one is pending → 429 rate_limited", async () => {
  const queue = createApprovalQueue({ timeoutSeconds: 5, log: quiet });
  const approver = createApprover(config({ approval_methods: ["queue"] }), { log: quiet, queue });
  const first = approver.decide(request("one"), new AbortController().signal);
  await assert.rejects(approver.decide(request("two"), new AbortController().signal), (err) => {
    assert.ok(isGateError(err, "rate_limited"));
    assert.equal(err.status, 429);
    assert.equal(err.retryAfterSeconds, 5);
    return true;
  });
  queue.decide("one", false);
  assert.equal((await first).approved, false);
});

Deno.test("createApprover(): a disconnect drops the queue entry and frees the slot", async () => {
  const queue = createApprovalQueue({ timeoutSeconds: 5, log: quiet });
  const approver = createApprover(config({ approval_methods: ["queue"] }), { log: quiet, queue });
  const ac = new AbortController();
  const first = approver.decide(request("gone"), ac.signal);
  ac.abort();
  const d = await first;
  assert.equal(d.approved, false);
  assert.match(d.detail, /disconnected/);
  assert.equal(queue.list().length, 0);
  assert.equal(queue.decide("gone", true), false, "a withdrawn request cannot be approved");
  // No cooldown after a cancel: the next request is admitted.
  const next = approver.decide(request("next"), new AbortController().signal);
  queue.decide("next", true);
  assert.equal((await next).approved, true);
});

Deno.test("createApprover(): approvers sharing a terminal take turns, so an answer reaches the prompt it was typed for", async () => {
  let last: Promise<unknown> = Promise.resolve();
  const turn = <T>(prompt: () => Promise<T>): Promise<T> => {
    const mine = last.then(prompt, prompt);
    last = mine.catch(() => {});
    return mine;
  };
  // One stdin: the first answer (typed after the first prompt) is "yes", the second "n".
  let release!: () => void;
  const typed = new Promise<void>((r) => (release = r));
  const answers = ["yes", "n"];
  const shared: TerminalDeps & { written: string[] } = {
    ...terminal([]),
    lines: {
      discard: () => {},
      next: async () => {
        await typed;
        return answers.shift();
      },
    },
  };
  const make = () =>
    createApprover(config({ approval_methods: ["terminal"] }), {
      log: quiet,
      queue: createApprovalQueue({ timeoutSeconds: 5, log: quiet }),
      terminal: shared,
      terminalTurn: turn,
    });
  const first = make().decide(
    { ...request("aaaa1111"), profile: "web" },
    new AbortController().signal,
  );
  const second = make().decide(
    { ...request("bbbb2222"), profile: "api" },
    new AbortController().signal,
  );
  await new Promise((r) => setTimeout(r, 20));
  const shown = shared.written.join("");
  assert.match(shown, /aaaa1111/);
  assert.doesNotMatch(shown, /bbbb2222/, "the second prompt waits for the first");
  assert.match(shown, /Profile: {3}web/);
  release();
  assert.equal((await first).approved, true);
  assert.equal((await second).approved, false);
  assert.match(shared.written.join(""), /Profile: {3}api/);
});
