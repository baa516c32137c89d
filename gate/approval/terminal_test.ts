import assert from "node:assert/strict";
import { createStreamLineReader, isApproval } from "./terminal.ts";

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
