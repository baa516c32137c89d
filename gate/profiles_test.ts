import assert from "node:assert/strict";
import { type Config, loadInvocation } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import { GATE_CLI } from "./cli.ts";
import { IMPLICIT_PROFILE, resolveProfiles, settingsChanged } from "./profiles.ts";

function config(dir: string, toml: string): Config {
  Deno.writeTextFileSync(`${dir}/c.toml`, toml);
  return loadInvocation(GATE_CLI, ["--config", `${dir}/c.toml`], {
    env: (n) => (n === "HOME" ? dir : undefined),
    readTextFile: (p) => Deno.readTextFileSync(p),
    cwd: () => dir,
  }).config;
}

function withDir(f: (dir: string) => void): void {
  const dir = Deno.realPathSync(Deno.makeTempDirSync({ prefix: "gcp-gate-profiles-" }));
  try {
    f(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("resolveProfiles(): a config without profiles is one unnamed profile of the top-level keys", () => {
  withDir((dir) => {
    const c = config(dir, `socket_path = "${dir}/g/gate.sock"\nproject_id = "p"`);
    const [only, ...rest] = resolveProfiles(c);
    assert.equal(rest.length, 0);
    assert.equal(only!.name, IMPLICIT_PROFILE);
    assert.equal(only!.named, false);
    assert.equal(only!.socket_path, `${dir}/g/gate.sock`);
    assert.equal(only!.project_id, "p");
  });
});

Deno.test("resolveProfiles(): profiles inherit top-level keys and override their own", () => {
  withDir((dir) => {
    const c = config(
      dir,
      [
        `project_id = "shared"`,
        `max_approvals_per_minute = 7`,
        `[profiles.a]`,
        `socket_path = "${dir}/a/gate.sock"`,
        `[profiles.b]`,
        `socket_path = "${dir}/b/gate.sock"`,
        `project_id = "bee"`,
      ].join("\n"),
    );
    const [a, b] = resolveProfiles(c);
    assert.equal(a!.project_id, "shared");
    assert.equal(b!.project_id, "bee");
    assert.equal(a!.max_approvals_per_minute, 7);
    assert.ok(a!.named && b!.named);
    assert.ok(settingsChanged(a!, b!));
    assert.ok(!settingsChanged(a!, { ...a! }));
  });
});

Deno.test("resolveProfiles(): refuses a missing socket_path, shared or nested directories, symlinked twins and the admin directory", () => {
  withDir((dir) => {
    Deno.mkdirSync(`${dir}/real`);
    Deno.symlinkSync(`${dir}/real`, `${dir}/link`);
    const admin = `admin_socket_path = "${dir}/admin/admin.sock"\n`;
    const bad: [string, RegExp][] = [
      [`[profiles.a]\nproject_id = "p"`, /\[profiles\.a\] needs its own socket_path/],
      [
        `[profiles.a]\nsocket_path = "${dir}/s/a.sock"\n[profiles.b]\nsocket_path = "${dir}/s/b.sock"`,
        /profiles a and b share a socket directory/,
      ],
      [
        `[profiles.a]\nsocket_path = "${dir}/s/a.sock"\n[profiles.b]\nsocket_path = "${dir}/s/in/b.sock"`,
        /profiles a and b share a socket directory/,
      ],
      [
        `[profiles.a]\nsocket_path = "${dir}/real/a.sock"\n[profiles.b]\nsocket_path = "${dir}/link/b.sock"`,
        /profiles a and b share a socket directory/,
      ],
      [
        `[profiles.a]\nsocket_path = "${dir}/admin/a.sock"`,
        /\[profiles\.a\] socket .* shares a directory tree with admin_socket_path/,
      ],
    ];
    for (const [toml, re] of bad) {
      assert.throws(
        () => resolveProfiles(config(dir, admin + toml)),
        (err: unknown) => err instanceof GateError && err.code === "config" && re.test(err.message),
        toml,
      );
    }
  });
});
