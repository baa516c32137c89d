import assert from "node:assert/strict";
import { type FlagSpec, parseFlags } from "./args.ts";
import { GateError } from "./errors.ts";

const OPTIONS: Record<string, FlagSpec> = {
  help: { type: "boolean", short: "h" },
  port: { type: "string" },
  e: { type: "string", short: "e", multiple: true },
  "dry-run": { type: "boolean" },
};

function usageError(args: string[], allowPositionals = false): string {
  try {
    parseFlags(args, { options: OPTIONS, allowPositionals });
  } catch (err) {
    assert.ok(err instanceof GateError && err.code === "usage", String(err));
    assert.ok(!err.message.includes("\n"));
    return err.message;
  }
  return assert.fail(`expected a usage error for ${JSON.stringify(args)}`);
}

Deno.test("parseFlags() reads long, =, short, boolean and repeated flags", () => {
  const r = parseFlags(["--port", "8173", "-h", "-e", "A=1", "--e=B=2", "--dry-run"], {
    options: OPTIONS,
  });
  assert.deepEqual(r.values, { port: "8173", help: true, e: ["A=1", "B=2"], "dry-run": true });
  assert.deepEqual(r.positionals, []);
  assert.equal(parseFlags(["--port=-1"], { options: OPTIONS }).values.port, "-1");
});

Deno.test("parseFlags() keeps everything after -- as positionals, flags included", () => {
  const r = parseFlags(["--port", "1", "--", "gcloud", "--project", "p", "--"], {
    options: OPTIONS,
    allowPositionals: true,
  });
  assert.deepEqual(r.positionals, ["gcloud", "--project", "p", "--"]);
  assert.deepEqual(
    parseFlags(["env", "--port", "2"], { options: OPTIONS, allowPositionals: true }),
    {
      values: { port: "2" },
      positionals: ["env"],
    },
  );
});

Deno.test("parseFlags() refuses unknown flags, missing values and stray arguments in one line", () => {
  assert.match(usageError(["--nope"]), /^Unknown option '--nope'$/);
  assert.match(usageError(["--nope=1"]), /^Unknown option '--nope'$/);
  assert.match(usageError(["-x"]), /^Unknown option '-x'$/);
  assert.match(usageError(["-hh"]), /^Unknown option '-hh'$/);
  assert.match(usageError(["--port"]), /'--port <value>' needs a value/);
  assert.match(usageError(["--port", "--help"]), /got '--help'; write --port=--help/);
  assert.match(usageError(["--help=yes"]), /'--help' does not take a value/);
  assert.match(usageError(["extra"]), /Unexpected argument 'extra'/);
  assert.match(usageError(["--", "extra"]), /Unexpected argument 'extra'/);
  // Inherited object keys are not options.
  assert.match(usageError(["--constructor"]), /Unknown option '--constructor'/);
  assert.match(usageError(["--__proto__"]), /Unknown option/);
});
