import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import { createLogger } from "../shared/log.ts";
import { runSetup, type SetupDeps, tokenCommandPath } from "./setup.ts";

const GCLOUD = Deno.readTextFileSync(
  new URL("../tests/fixtures/kubeconfig_gcloud.yaml", import.meta.url),
);
const TOKEN = "/opt/gcp-gate/bin/gcp-kube-token";

function deps(): SetupDeps & { lines: string[]; out: string[] } {
  const lines: string[] = [];
  const out: string[] = [];
  return {
    log: createLogger({ write: (l) => lines.push(l) }),
    stdout: (t) => out.push(t),
    lines,
    out,
  };
}

Deno.test("tokenCommandPath() finds the launcher beside this program's", () => {
  assert.equal(
    tokenCommandPath("file:///opt/gcp-gate/lib/gcp-kube-setup.js", "/usr/bin/deno"),
    "/opt/gcp-gate/bin/gcp-kube-token",
  );
  assert.equal(
    tokenCommandPath("file:///src/gcp-gate/kube/setup_main.ts", "/usr/bin/deno"),
    "/src/gcp-gate/dist/bin/gcp-kube-token",
  );
  assert.equal(
    tokenCommandPath(
      "file:///tmp/deno-compile-gcp-kube-setup/x.js",
      "/usr/local/bin/gcp-kube-setup",
    ),
    "/usr/local/bin/gcp-kube-token",
  );
});

Deno.test("runSetup(): patch, second run says nothing changed, revert restores the bytes", () => {
  const dir = Deno.makeTempDirSync({ prefix: "kube-setup-" });
  try {
    const f = `${dir}/config`;
    Deno.writeTextFileSync(f, GCLOUD, { mode: 0o600 });
    const opts = { kubeconfig: f, dryRun: false, revert: false, tokenCommand: TOKEN };
    const d1 = deps();
    assert.equal(runSetup(opts, d1), 0);
    assert.match(d1.lines.join("\n"), /pointed 2 user\(s\) at .*backup .*config\.bak/);
    assert.equal(Deno.readTextFileSync(`${f}.bak`), GCLOUD);
    const patched = Deno.readTextFileSync(f);
    const d2 = deps();
    assert.equal(runSetup(opts, d2), 0);
    assert.match(d2.lines.join("\n"), /nothing to change/);
    assert.equal(Deno.readTextFileSync(f), patched);
    const d3 = deps();
    assert.equal(runSetup({ ...opts, revert: true }, d3), 0);
    assert.equal(Deno.readTextFileSync(f), GCLOUD);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("runSetup() refuses a read-only kubeconfig and leaves it untouched", () => {
  const dir = Deno.makeTempDirSync({ prefix: "kube-setup-" });
  try {
    const f = `${dir}/config`;
    Deno.writeTextFileSync(f, GCLOUD);
    Deno.chmodSync(f, 0o444);
    const opts = { kubeconfig: f, dryRun: false, revert: false, tokenCommand: TOKEN };
    assert.throws(
      () => runSetup(opts, deps()),
      (e) => e instanceof GateError && e.code === "forbidden",
    );
    assert.equal(Deno.readTextFileSync(f), GCLOUD);
    assert.throws(() => Deno.statSync(`${f}.bak`), Deno.errors.NotFound);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
