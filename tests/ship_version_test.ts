/**
 * The version and git commit are baked into the build: `--version` of a
 * built launcher shows the commit, and nothing runs git at run time (a `git`
 * first on PATH that would leave a mark is never called).
 */
import assert from "node:assert/strict";
import { VERSION } from "../shared/version.ts";
import { baseEnv, BIN, ROOT, run, tempDir } from "./_utils.ts";

const ROLES = ["gcp-gate", "gcp-metadata-proxy", "with-prod", "gcp-kube-token", "gcp-kube-setup"];

function built(role: string): boolean {
  try {
    return Deno.statSync(`${BIN}/${role}`).isFile;
  } catch {
    return false;
  }
}

for (const role of ROLES) {
  Deno.test({
    name: `version: ${role} --version shows the baked-in commit without running git`,
    ignore: !built(role),
    fn: async () => {
      await using home = tempDir();
      const trap = `${home.path}/trap`;
      Deno.mkdirSync(trap);
      Deno.writeTextFileSync(
        `${trap}/git`,
        `#!/bin/sh\necho called > '${home.path}/git-was-called'\nexit 1\n`,
        { mode: 0o755 },
      );
      Deno.chmodSync(`${trap}/git`, 0o755);
      const env = baseEnv(home.path, {
        PATH: `${trap}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
      });
      const res = await run(role, ["--version"], { env });
      assert.equal(res.code, 0, res.stderr);
      const m = new RegExp(`^${role} ${VERSION.replaceAll(".", "\\.")} \\(([^)]+)\\)$`).exec(
        res.stdout.trim(),
      );
      assert.ok(m, `unexpected --version output: ${res.stdout}`);
      // A real commit (the build runs in a git checkout), not the source placeholder.
      assert.match(m[1]!, /^[0-9a-f]{7,40}$/);
      assert.throws(() => Deno.statSync(`${home.path}/git-was-called`), Deno.errors.NotFound);
      const bundle = Deno.readTextFileSync(`${ROOT}/dist/lib/${role}.js`);
      assert.ok(!bundle.includes("__GCP_GATE_COMMIT__"), "placeholder left in the bundle");
      assert.ok(bundle.includes(m[1]!), "commit not baked into the bundle");
    },
  });
}
