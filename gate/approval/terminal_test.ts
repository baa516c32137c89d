import assert from "node:assert/strict";
import { createStreamLineReader, isApproval, terminalPrompt } from "./terminal.ts";
import type { ApprovalRequest } from "./types.ts";

function feed(): {
  stream: ReadableStream<Uint8Array>;
  write: (s: string) => void;
  end: () => void;
} {
  let ctrl!: ReadableStreamDefaultController<Uint8Array>;
  const stream = new ReadableStream<Uint8Array>({ start: (c) => (ctrl = c) });
  return {
    stream,
    write: (s) => ctrl.enqueue(new TextEncoder().encode(s)),
    end: () => ctrl.close(),
  };
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

Deno.test("isApproval(): a command needs the whole word yes; without one, y is enough", () => {
  assert.equal(isApproval("yes", true), true);
  assert.equal(isApproval(" YES ", true), true);
  assert.equal(isApproval("y", true), false);
  assert.equal(isApproval("yes please", true), false);
  assert.equal(isApproval("y", false), true);
  assert.equal(isApproval("", false), false);
  assert.equal(isApproval("n", false), false);
});

Deno.test("createStreamLineReader(): discard() drops type-ahead; next() gets the line typed after", async () => {
  const f = feed();
  const r = createStreamLineReader(f.stream);
  f.write("yes\nyes\n");
  await tick();
  r.discard();
  const next = r.next(new AbortController().signal);
  f.write("no\r\n");
  assert.equal(await next, "no");
});

Deno.test("createStreamLineReader(): abort and end of input give undefined", async () => {
  const f = feed();
  const r = createStreamLineReader(f.stream);
  const ac = new AbortController();
  const waiting = r.next(ac.signal);
  ac.abort();
  assert.equal(await waiting, undefined);
  f.write("partial");
  f.end();
  assert.equal(await r.next(new AbortController().signal), undefined);
});

Deno.test("createStreamLineReader(): lines are capped in length", async () => {
  const f = feed();
  const r = createStreamLineReader(f.stream);
  const next = r.next(new AbortController().signal);
  f.write("x".repeat(10_000) + "\n");
  assert.equal((await next)?.length, 4096);
});

Deno.test("terminalPrompt(): caps a long command and repeats the facts in the question", () => {
  const req: ApprovalRequest = {
    id: "ab12cd34",
    email: "eng@example.com",
    project: "prod-p",
    scopes: ["https://www.googleapis.com/auth/cloud-platform"],
    ttlSeconds: 600,
    reason: undefined,
    // Padded arguments that try to look like header lines near the question.
    command: [
      "sh",
      ...Array.from({ length: 300 }, (_, i) => `x${i}`),
      `${" ".repeat(3000)}Project:   harmless-dev`,
    ],
    notes: [],
    kind: "session",
    code: "K7P-QX2",
    serviceAccount: "prod@p.iam.gserviceaccount.com",
  };
  const text = terminalPrompt(req, 60);
  const lines = text.split("\n");
  assert.ok(lines.length < 70, `${lines.length} lines`);
  assert.ok(lines.every((l) => l.length <= 300), "a line is too wide");
  assert.ok(!text.includes("harmless-dev"), "an argument far down was shown");
  assert.match(text, /… 262 more arguments not shown here/);
  assert.match(text, /^Code: +K7P-QX2 — must match what with-prod printed$/m);
  assert.equal(
    lines.at(-1),
    'Type "yes" to allow project prod-p, scopes cloud-platform, 10 min, code K7P-QX2, request ab12cd34; anything else denies (1 min left): ',
  );
  const { code: _, ...without } = req;
  assert.match(
    terminalPrompt({ ...without, command: undefined }, 60),
    /Allow\? \[y\/N\] project prod-p, .*code none, request ab12cd34 \(1 min left\): $/,
  );
});
