/**
 * The desktop dialog: zenity on Linux, osascript on macOS, run by absolute
 * path (a PATH lookup would let whoever controls PATH answer for the human).
 * Deny is the default button; an unanswered dialog denies at the timeout and
 * is killed 5 s later if it still has not returned.
 *
 * A dialog that cannot be shown (no display, program missing, program error)
 * is "unavailable", never a denial: reading zenity's "cannot open display"
 * exit as Cancel is how other tools silently deny every prod request on a
 * headless host.
 */
import { describeRequest, formatDuration, LINE_CHARS_SHOWN, requestTitle } from "./format.ts";
import { type ApprovalStep, cancelled, type MethodOutcome } from "./method.ts";
import type { CommandResult, RunCommand } from "./run_command.ts";
import type { ApprovalRequest } from "./types.ts";

/** Options for {@linkcode createDialogStep}. */
export interface DialogOptions {
  zenityPath: string;
  osascriptPath: string;
  timeoutSeconds: number;
}

/** Dependencies of {@linkcode createDialogStep}. */
export interface DialogDeps {
  run: RunCommand;
  /** Reads DISPLAY / WAYLAND_DISPLAY. */
  env: (name: string) => string | undefined;
  os: typeof Deno.build.os;
  now?: () => number;
}

/** A dialog that has not returned this long after its own timeout is killed. */
export const DIALOG_GRACE_SECONDS = 5;
/** A dialog cannot scroll: longer commands are summarised (the line says so). */
const DIALOG_COMMAND_LINES = 40;

const ZENITY_OK = 0;
const ZENITY_CANCEL = 1;
const ZENITY_TIMEOUT = 5;

/** The zenity arguments for `req` (plain text: --no-markup, so `<b>` in an argv stays text). */
export function zenityArgs(req: ApprovalRequest, timeoutSeconds: number): string[] {
  const text = [
    ...describeRequest(req, {
      maxCommandLines: DIALOG_COMMAND_LINES,
      maxLineChars: LINE_CHARS_SHOWN,
    }),
    "",
    `Deny is the default. Unanswered, this dialog denies in ${formatDuration(timeoutSeconds)}.`,
  ].join("\n");
  return [
    "--question",
    `--title=${requestTitle(req)}`,
    `--text=${text}`,
    "--no-markup",
    "--icon-name=dialog-warning",
    "--ok-label=Allow",
    "--cancel-label=Deny",
    "--default-cancel",
    `--timeout=${timeoutSeconds}`,
    "--width=760",
  ];
}

/** True when zenity (GTK) failed because it could not reach a display server. */
export function isNoDisplayError(stderr: string): boolean {
  return /cannot open display|Failed to open display|could not connect to display|Unable to init server/i
    .test(stderr);
}

function firstLine(text: string): string {
  return (text.trim().split("\n").find((l) => l.trim() !== "") ?? "").slice(0, 200);
}

/** The endings every dialog program shares: the client went away, or we killed it. */
function endedWithoutAnswer(
  r: CommandResult,
  aborted: boolean,
  timeoutSeconds: number,
): MethodOutcome | undefined {
  if (aborted) return cancelled();
  if (r.killed) {
    return {
      kind: "denied",
      detail: `the dialog did not return within ${
        timeoutSeconds + DIALOG_GRACE_SECONDS
      } s and was closed`,
    };
  }
  return undefined;
}

/** Maps zenity's exit to an outcome: 0 Allow, 1 Deny, 5 timeout, anything else an error. */
export function zenityOutcome(
  r: CommandResult,
  aborted: boolean,
  timeoutSeconds: number,
): MethodOutcome {
  const ended = endedWithoutAnswer(r, aborted, timeoutSeconds);
  if (ended) return ended;
  // Checked before the exit code: zenity exits 1 (the Cancel code) when it cannot open a display.
  if (isNoDisplayError(r.stderr)) {
    return {
      kind: "unavailable",
      detail: `zenity cannot open the display (${firstLine(r.stderr)})`,
    };
  }
  if (r.code === ZENITY_OK) return { kind: "approved", detail: "allowed in the desktop dialog" };
  if (r.code === ZENITY_CANCEL) return { kind: "denied", detail: "denied in the desktop dialog" };
  if (r.code === ZENITY_TIMEOUT) {
    return { kind: "denied", detail: `the desktop dialog timed out after ${timeoutSeconds} s` };
  }
  return {
    kind: "unavailable",
    detail: `zenity failed (exit ${r.code}${r.stderr ? `: ${firstLine(r.stderr)}` : ""})`,
  };
}

// The text and title go in as arguments, never spliced into the script:
// no quoting of hostile text into AppleScript.
const OSASCRIPT_LINES = [
  "on run argv",
  'set r to display dialog (item 2 of argv) with title (item 1 of argv) buttons {"Deny", "Allow"} default button "Deny" cancel button "Deny" with icon caution giving up after ((item 3 of argv) as integer)',
  'if gave up of r then return "timeout"',
  "return button returned of r",
  "end run",
];

/** The osascript arguments for `req`. */
export function osascriptArgs(req: ApprovalRequest, timeoutSeconds: number): string[] {
  const text = describeRequest(req, {
    maxCommandLines: DIALOG_COMMAND_LINES,
    maxLineChars: LINE_CHARS_SHOWN,
  }).join("\n");
  return [
    ...OSASCRIPT_LINES.flatMap((l) => ["-e", l]),
    requestTitle(req),
    text,
    String(timeoutSeconds),
  ];
}

/** Maps osascript's result: "Allow", "timeout", or error -128 (the Deny/cancel button). */
export function osascriptOutcome(
  r: CommandResult,
  aborted: boolean,
  timeoutSeconds: number,
): MethodOutcome {
  const ended = endedWithoutAnswer(r, aborted, timeoutSeconds);
  if (ended) return ended;
  const out = r.stdout.trim();
  if (r.code === 0 && out === "Allow") {
    return { kind: "approved", detail: "allowed in the desktop dialog" };
  }
  if (r.code === 0 && out === "timeout") {
    return { kind: "denied", detail: `the desktop dialog timed out after ${timeoutSeconds} s` };
  }
  if (r.code !== 0 && /\(-128\)/.test(r.stderr)) {
    return { kind: "denied", detail: "denied in the desktop dialog" };
  }
  return {
    kind: "unavailable",
    detail: `osascript failed (exit ${r.code}${r.stderr ? `: ${firstLine(r.stderr)}` : ""})`,
  };
}

/** Creates the dialog step. */
export function createDialogStep(options: DialogOptions, deps: DialogDeps): ApprovalStep {
  const now = deps.now ?? Date.now;
  const mac = deps.os === "darwin";
  return {
    name: "dialog",
    async ask(req, ctx) {
      if (!mac && deps.os !== "linux" && deps.os !== "freebsd") {
        return { kind: "unavailable", detail: `no desktop dialog on ${deps.os}` };
      }
      if (!mac && !deps.env("DISPLAY") && !deps.env("WAYLAND_DISPLAY")) {
        return { kind: "unavailable", detail: "neither DISPLAY nor WAYLAND_DISPLAY is set" };
      }
      const path = mac ? options.osascriptPath : options.zenityPath;
      const args = mac
        ? osascriptArgs(req, options.timeoutSeconds)
        : zenityArgs(req, options.timeoutSeconds);
      const killAfterMs = (options.timeoutSeconds + DIALOG_GRACE_SECONDS) * 1000;
      ctx.setDeadline(now() + killAfterMs);
      let result: CommandResult;
      try {
        result = await deps.run(path, args, { signal: ctx.signal, killAfterMs });
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) {
          return {
            kind: "unavailable",
            detail: `${path} not found (install it, or set ${
              mac ? "osascript_path" : "zenity_path"
            })`,
          };
        }
        if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
          return { kind: "unavailable", detail: `not allowed to run ${path}` };
        }
        throw err;
      }
      return mac
        ? osascriptOutcome(result, ctx.signal.aborted, options.timeoutSeconds)
        : zenityOutcome(result, ctx.signal.aborted, options.timeoutSeconds);
    },
  };
}
