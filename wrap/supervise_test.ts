import assert from "node:assert/strict";
import {
  exitCodeForSignal,
  exitCodeOf,
  supervise,
  type SupervisedChild,
  type SuperviseDeps,
} from "./supervise.ts";

interface Harness {
  deps: SuperviseDeps;
  child: SupervisedChild;
  sent: Deno.Signal[];
  /** Roots passed to killTree. */
  trees: number[];
  raise(signal: Deno.Signal): void;
  fireTimers(): void;
  exit(status: Deno.CommandStatus): void;
  listeners(): number;
}

function harness(): Harness {
  const listeners = new Map<Deno.Signal, Set<() => void>>();
  const timers = new Map<number, () => void>();
  let nextTimer = 1;
  const sent: Deno.Signal[] = [];
  const trees: number[] = [];
  const status = Promise.withResolvers<Deno.CommandStatus>();
  return {
    deps: {
      addSignalListener: (s, h) => {
        const set = listeners.get(s) ?? new Set();
        set.add(h);
        listeners.set(s, set);
      },
      removeSignalListener: (s, h) => listeners.get(s)?.delete(h),
      schedule: (fn) => {
        const id = nextTimer++;
        timers.set(id, fn);
        return () => timers.delete(id);
      },
      killTree: (pid) => trees.push(pid),
    },
    child: { pid: 4242, kill: (s) => sent.push(s), status: status.promise },
    sent,
    trees,
    raise: (s) => listeners.get(s)?.forEach((h) => h()),
    fireTimers: () => {
      for (const [id, fn] of [...timers]) {
        timers.delete(id);
        fn();
      }
    },
    exit: (s) => status.resolve(s),
    listeners: () => [...listeners.values()].reduce((n, s) => n + s.size, 0),
  };
}

Deno.test("supervise() forwards SIGTERM once and returns the child's code", async () => {
  const h = harness();
  const done = supervise(h.child, { stdinIsTerminal: false }, h.deps);
  h.raise("SIGTERM");
  assert.deepEqual(h.sent, ["SIGTERM"]);
  h.exit({ success: false, code: 143, signal: "SIGTERM" });
  assert.equal(await done, 143);
  assert.equal(h.listeners(), 0, "listeners are removed");
});

Deno.test("supervise() sends SIGKILL to the whole tree on a second signal", async () => {
  const h = harness();
  const done = supervise(h.child, { stdinIsTerminal: false }, h.deps);
  h.raise("SIGHUP");
  assert.deepEqual(h.trees, [], "one signal is only forwarded");
  h.raise("SIGTERM");
  assert.deepEqual(h.sent, ["SIGHUP", "SIGKILL"]);
  assert.deepEqual(h.trees, [4242], "the command's children go too");
  h.exit({ success: false, code: 137, signal: "SIGKILL" });
  assert.equal(await done, 137);
});

Deno.test("supervise() sends SIGKILL when the grace period after a signal ends", async () => {
  const h = harness();
  const done = supervise(h.child, { stdinIsTerminal: false }, h.deps);
  h.raise("SIGQUIT");
  h.fireTimers();
  assert.deepEqual(h.sent, ["SIGQUIT", "SIGKILL"]);
  assert.deepEqual(h.trees, [4242]);
  h.exit({ success: false, code: 137, signal: "SIGKILL" });
  assert.equal(await done, 137);
});

Deno.test("supervise() does not relay Ctrl-C from a terminal (the process group got it)", async () => {
  const h = harness();
  const done = supervise(h.child, { stdinIsTerminal: true }, h.deps);
  h.raise("SIGINT");
  h.raise("SIGINT");
  h.fireTimers();
  assert.deepEqual(h.sent, []);
  assert.deepEqual(h.trees, []);
  h.exit({ success: true, code: 0, signal: null });
  assert.equal(await done, 0);
});

Deno.test("supervise() relays SIGINT when stdin is not a terminal", async () => {
  const h = harness();
  const done = supervise(h.child, { stdinIsTerminal: false }, h.deps);
  h.raise("SIGINT");
  assert.deepEqual(h.sent, ["SIGINT"]);
  h.exit({ success: false, code: 130, signal: "SIGINT" });
  assert.equal(await done, 130);
});

Deno.test("exitCodeOf() maps signals to 128+n and passes codes through", () => {
  assert.equal(exitCodeOf({ success: false, code: 7, signal: null }), 7);
  assert.equal(exitCodeOf({ success: false, code: 9, signal: "SIGKILL" }), 137);
  assert.equal(exitCodeForSignal("SIGINT"), 130);
  assert.equal(exitCodeForSignal("SIGTERM"), 143);
});
