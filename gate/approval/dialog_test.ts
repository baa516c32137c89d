import assert from "node:assert/strict";
import {
  isNoDisplayError,
  osascriptArgs,
  osascriptOutcome,
  zenityArgs,
  zenityOutcome,
} from "./dialog.ts";
import type { CommandResult } from "./run_command.ts";
import type { ApprovalRequest } from "./types.ts";

const REQ: ApprovalRequest = {
  id: "feedbeef",
  email: "engineer@example.com",
  project: "demo-project",
  scopes: ["https://www.googleapis.com/auth/cloud-platform"],
  ttlSeconds: 900,
  reason: "<b>urgent</b>",
  command: Array.from({ length: 45 }, (_, i) => `arg${i}`),
  notes: ["argument 3 truncated to 2000 characters (was 5000)"],
  kind: "token",
};

function result(over: Partial<CommandResult>): CommandResult {
  return { code: 0, killed: false, stdout: "", stderr: "", ...over };
}

Deno.test("zenityArgs(): Deny default, plain text, timeout, caps stated, long commands summarised", () => {
  const args = zenityArgs(REQ, 60);
  for (const a of ["--no-markup", "--default-cancel", "--ok-label=Allow", "--cancel-label=Deny"]) {
    assert.ok(args.includes(a), a);
  }
  assert.ok(args.includes("--timeout=60"));
  const text = args.find((a) => a.startsWith("--text="))!;
  assert.match(text, /Reason:\s+<b>urgent<\/b>/);
  assert.match(
    text,
    /40 {2}arg39\n {2}… 5 more arguments not shown here; deny if you need to see them/,
  );
  assert.match(text, /Caps applied \(512 arguments, 2000 characters each, 32 KiB in total\)/);
  assert.match(text, /argument 3 truncated/);
  assert.match(text, /Lifetime:\s+15 min \(900 s\)/);
});

Deno.test("zenityOutcome(): 0 allows, 1 denies, 5 times out, display errors and others fall through", () => {
  assert.equal(zenityOutcome(result({ code: 0 }), false, 60).kind, "approved");
  assert.equal(zenityOutcome(result({ code: 1 }), false, 60).kind, "denied");
  const t = zenityOutcome(result({ code: 5 }), false, 60);
  assert.deepEqual(t, { kind: "denied", detail: "the desktop dialog timed out after 60 s" });
  const nd = zenityOutcome(result({ code: 1, stderr: "cannot open display: :0" }), false, 60);
  assert.equal(nd.kind, "unavailable");
  assert.equal(zenityOutcome(result({ code: 255, stderr: "boom" }), false, 60).kind, "unavailable");
  assert.equal(zenityOutcome(result({ code: 143, killed: true }), true, 60).kind, "cancelled");
  assert.match(zenityOutcome(result({ code: 143, killed: true }), false, 60).detail, /65 s/);
  assert.ok(isNoDisplayError("Gtk-WARNING **: 20:13:20.054: cannot open display: "));
  assert.ok(!isNoDisplayError("Gtk-Message: GtkDialog mapped without a transient parent"));
});

Deno.test("osascriptArgs(): the text travels as an argument, never inside the script", () => {
  const args = osascriptArgs({ ...REQ, reason: '" & do shell script "rm -rf ~' }, 60);
  const script = args.filter((_, i) => args[i - 1] === "-e").join("\n");
  assert.ok(!script.includes("rm -rf"), "hostile text was spliced into AppleScript");
  assert.match(script, /default button "Deny" cancel button "Deny"/);
  assert.equal(args.at(-1), "60");
});

Deno.test("osascriptOutcome(): Allow, timeout, -128 (Deny), other errors fall through", () => {
  assert.equal(osascriptOutcome(result({ stdout: "Allow\n" }), false, 60).kind, "approved");
  assert.equal(osascriptOutcome(result({ stdout: "timeout\n" }), false, 60).kind, "denied");
  const deny = result({ code: 1, stderr: "execution error: User canceled. (-128)" });
  assert.equal(osascriptOutcome(deny, false, 60).kind, "denied");
  const noUi = result({ code: 1, stderr: "execution error: No user interaction allowed. (-1713)" });
  assert.equal(osascriptOutcome(noUi, false, 60).kind, "unavailable");
});

Deno.test("zenityArgs(): the approval code is in the title and the text, or 'none'", () => {
  const args = zenityArgs({ ...REQ, code: "K7P-QX2" }, 60);
  assert.ok(args.some((a) => a.startsWith("--title=") && a.includes("code K7P-QX2")));
  const text = args.find((a) => a.startsWith("--text="))!;
  assert.match(text, /^Code: +K7P-QX2 — must match what with-prod printed$/m);
  const none = zenityArgs(REQ, 60).find((a) => a.startsWith("--text="))!;
  assert.match(none, /^Code: +none \(not from with-prod\)$/m);
});

Deno.test("zenityArgs(): without prod_service_account the text says it grants your own credentials", () => {
  const own = zenityArgs(REQ, 60).find((a) => a.startsWith("--text="))!;
  assert.match(own, /^Grants: +YOUR OWN credentials \(engineer@example\.com\)/m);
  const sa = zenityArgs({ ...REQ, serviceAccount: "prod@p.iam.gserviceaccount.com" }, 60)
    .find((a) => a.startsWith("--text="))!;
  assert.doesNotMatch(sa, /YOUR OWN/);
});
