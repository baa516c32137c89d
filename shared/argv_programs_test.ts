import assert from "node:assert/strict";
import { findProgram, PROGRAM_RULES, programHit, redactUserinfo } from "./argv_programs.ts";

Deno.test("findProgram() reads argv[0]'s basename, or the word after sudo/env and their options", () => {
  const at = (argv: unknown[]): number | undefined => findProgram(argv)?.index;
  assert.equal(at(["mysql", "-p"]), 0);
  assert.equal(at(["/usr/local/bin/curl"]), 0);
  assert.equal(at(["sudo", "-u", "root", "-E", "mysql"]), 4);
  assert.equal(at(["env", "-u", "X", "A=1", "B=2", "sshpass"]), 5);
  assert.equal(at(["sudo", "--", "env", "A=1", "redis-cli"]), 4);
  assert.equal(at(["sudo", "-u", "root"]), undefined, "no program after the wrapper");
  assert.equal(at(["echo", "mysql"]), undefined, "mysql is an argument of echo");
  assert.equal(at(["sudo", "A=1", "mysql"]), undefined, "only env skips assignments");
  assert.equal(at([5, "mysql"]), undefined, "hostile JSON: not a string");
  assert.equal(at(["constructor"]), undefined, "no inherited property is a rule");
  assert.equal(at([...Array(30).fill("env"), "mysql"]), undefined, "looks only 24 words in");
});

Deno.test("programHit() and redactUserinfo() keep the flag and the user, hide the secret", () => {
  const R = "[R]";
  assert.deepEqual(programHit(PROGRAM_RULES.mysql!, "-pX", R), { kind: "shown", arg: "-p[R]" });
  assert.equal(programHit(PROGRAM_RULES.mysql!, "-p", R), undefined, "-p alone prompts");
  assert.equal(programHit(PROGRAM_RULES.mysql!, "--port=1", R), undefined);
  assert.deepEqual(programHit(PROGRAM_RULES.curl!, "-vu", R), { kind: "next", value: "userinfo" });
  assert.deepEqual(programHit(PROGRAM_RULES.curl!, "--user=a:b:c", R), {
    kind: "shown",
    arg: "--user=a:[R]",
  });
  assert.equal(redactUserinfo("admin", R), undefined);
  assert.equal(redactUserinfo("admin:", R), undefined);
  assert.equal(redactUserinfo(":pw", R), ":[R]");
});
