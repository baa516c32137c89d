import assert from "node:assert/strict";
import {
  doctorExitCode,
  fail,
  pass,
  renderJson,
  renderText,
  runChecks,
  shellArg,
  warn,
} from "./doctor_report.ts";

Deno.test("doctorExitCode() is 0 all pass, 3 only warnings, 1 any failure", () => {
  assert.equal(doctorExitCode([pass("a", "ok")]), 0);
  assert.equal(doctorExitCode([pass("a", "ok"), warn("b", "hm", "fix b")]), 3);
  assert.equal(doctorExitCode([warn("b", "hm", "fix b"), fail("c", "no", "fix c")]), 1);
});

Deno.test("runChecks() turns a throwing check into one FAIL line and redacts tokens", async () => {
  const results = await runChecks([
    { id: "boom", run: () => Promise.reject(new Error("first line\nsecond line")) },
    { id: "leaky", run: () => Promise.resolve(pass("leaky", "got ya29.secret-token-value")) },
    { id: "many", run: () => Promise.resolve([pass("many", "1"), warn("many", "2", "x")]) },
  ]);
  assert.equal(results[0]!.status, "FAIL");
  assert.equal(results[0]!.message, "check failed: first line");
  assert.doesNotMatch(results[1]!.message, /secret-token/);
  assert.equal(results.length, 4);
});

Deno.test("renderText() indents the fix under its check; renderJson() carries the exit code", () => {
  const results = [pass("config", "read x"), warn("service", "not installed", "install it")];
  assert.equal(
    renderText(results),
    "PASS  config   read x\nWARN  service  not installed\n               fix: install it\n\n1 passed, 1 warnings, 0 failed",
  );
  const j = JSON.parse(renderJson("p", "v", results));
  assert.equal(j.exit_code, 3);
  assert.deepEqual(j.checks[1], {
    id: "service",
    status: "WARN",
    message: "not installed",
    fix: "install it",
  });
});

Deno.test("shellArg() leaves plain paths alone and quotes anything a shell would interpret", () => {
  assert.equal(shellArg("/home/u/.config/gcloud/a_b-c.json"), "/home/u/.config/gcloud/a_b-c.json");
  assert.equal(shellArg("user:me@example.com"), "user:me@example.com");
  assert.equal(shellArg("/h/a.json; curl x | sh"), "'/h/a.json; curl x | sh'");
  assert.equal(shellArg("/h/it's.json"), `'/h/it'"'"'s.json'`);
  assert.equal(shellArg("/h/$(id).json"), "'/h/$(id).json'");
});
