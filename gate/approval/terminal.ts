/**
 * The terminal prompt, on the gate's own stdin/stderr when both are a
 * terminal. Not /dev/tty: Deno allows reading it only with --allow-all, and
 * the gate's sandbox is worth more than a prompt for a backgrounded gate.
 *
 * Input typed before the prompt appeared is discarded: a "yes" typed ahead
 * (or pasted by something that can write to this terminal) must not approve
 * a request the human has not seen yet.
 */
import {
  COMMAND_LINES_SHOWN,
  describeRequest,
  formatDuration,
  LINE_CHARS_SHOWN,
  requestSummary,
} from "./format.ts";
import { type ApprovalStep, cancelled } from "./method.ts";
import type { ApprovalRequest } from "./types.ts";

/** Lines typed on the gate's terminal. */
export interface LineReader {
  /** Drops everything typed so far. */
  discard(): void;
  /** The next line typed after now; undefined at end of input or on abort. */
  next(signal: AbortSignal): Promise<string | undefined>;
}

/** Dependencies of {@linkcode createTerminalStep}. */
export interface TerminalDeps {
  /** True when the gate's stdin and stderr are both a terminal. */
  isTerminal: () => boolean;
  /** Writes to the terminal (stderr). */
  write: (text: string) => void;
  lines: LineReader;
  now?: () => number;
}

/** Options for {@linkcode createTerminalStep}. */
export interface TerminalOptions {
  timeoutSeconds: number;
}

/** A human approving a command must type the whole word; without a command, y is enough. */
export function isApproval(answer: string, hasCommand: boolean): boolean {
  const a = answer.trim().toLowerCase();
  return hasCommand ? a === "yes" : a === "yes" || a === "y";
}

/**
 * The prompt text for `req`, ending with the question. The command is capped
 * (lines and width, like the dialog), and the question repeats project,
 * scopes, lifetime, code and id: a long or padded command must not scroll
 * the facts away, nor fake header lines just above the question.
 */
export function terminalPrompt(req: ApprovalRequest, timeoutSeconds: number): string {
  const hasCommand = (req.command?.length ?? 0) > 0;
  const rule = "─".repeat(72);
  const left = formatDuration(timeoutSeconds);
  return [
    "",
    `\u0007${rule}`,
    ...describeRequest(req, {
      maxCommandLines: COMMAND_LINES_SHOWN,
      maxLineChars: LINE_CHARS_SHOWN,
    }),
    rule,
    hasCommand
      ? `Type "yes" to allow ${requestSummary(req)}; anything else denies (${left} left): `
      : `Allow? [y/N] ${requestSummary(req)} (${left} left): `,
  ].join("\n");
}

/** Creates the terminal step. */
export function createTerminalStep(options: TerminalOptions, deps: TerminalDeps): ApprovalStep {
  const now = deps.now ?? Date.now;
  return {
    name: "terminal",
    async ask(req, ctx) {
      if (!deps.isTerminal()) {
        return { kind: "unavailable", detail: "the gate's stdin/stderr is not a terminal" };
      }
      const ms = options.timeoutSeconds * 1000;
      ctx.setDeadline(now() + ms);
      const timeout = AbortSignal.timeout(ms);
      const signal = AbortSignal.any([ctx.signal, timeout]);
      deps.lines.discard();
      deps.write(terminalPrompt(req, options.timeoutSeconds));
      const answer = await deps.lines.next(signal);
      if (ctx.signal.aborted) {
        deps.write(`\nrequest ${req.id} withdrawn: the asking client disconnected\n`);
        return cancelled();
      }
      if (answer === undefined) {
        const why = timeout.aborted
          ? `no answer on the terminal within ${options.timeoutSeconds} s`
          : "the terminal closed";
        deps.write(`\ndenied: ${why}\n`);
        return { kind: "denied", detail: why };
      }
      const hasCommand = (req.command?.length ?? 0) > 0;
      if (isApproval(answer, hasCommand)) {
        deps.write("allowed.\n");
        return { kind: "approved", detail: "allowed on the gate's terminal" };
      }
      deps.write("denied.\n");
      return { kind: "denied", detail: "denied on the gate's terminal" };
    },
  };
}

/** Lines are bounded: a stuck key or a paste bomb must not grow the gate's memory. */
const MAX_LINE = 4096;
const MAX_BUFFERED_LINES = 16;

/**
 * A {@linkcode LineReader} over a byte stream (the gate's stdin). Reading
 * starts at once: lines typed ahead sit in the terminal's kernel buffer
 * otherwise, and would be read (and taken as an answer) at the first prompt.
 */
export function createStreamLineReader(stream: ReadableStream<Uint8Array>): LineReader {
  const lines: string[] = [];
  let partial = "";
  let ended = false;
  let wake: (() => void) | undefined;

  async function pump(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of stream) {
        partial += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = partial.indexOf("\n")) >= 0) {
          lines.push(partial.slice(0, nl).replace(/\r$/, "").slice(0, MAX_LINE));
          partial = partial.slice(nl + 1);
          if (lines.length > MAX_BUFFERED_LINES) lines.shift();
        }
        if (partial.length > MAX_LINE) partial = partial.slice(0, MAX_LINE);
        wake?.();
      }
    } catch { /* a closed or broken terminal is the end of input */ }
    ended = true;
    wake?.();
  }
  void pump();

  return {
    discard() {
      lines.length = 0;
      partial = "";
    },
    async next(signal) {
      while (!signal.aborted) {
        const line = lines.shift();
        if (line !== undefined) return line;
        if (ended) return undefined;
        await new Promise<void>((resolve) => {
          const done = (): void => {
            wake = undefined;
            signal.removeEventListener("abort", done);
            resolve();
          };
          wake = done;
          signal.addEventListener("abort", done, { once: true });
        });
      }
      return undefined;
    },
  };
}
