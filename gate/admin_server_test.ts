import assert from "node:assert/strict";
import { sharesMountedDir } from "./admin_server.ts";

Deno.test("sharesMountedDir() refuses the same, a nested or an enclosing directory", () => {
  const gate = "/run/user/1000/gcp-gate/gate.sock";
  assert.ok(sharesMountedDir("/run/user/1000/gcp-gate/admin.sock", gate));
  assert.ok(sharesMountedDir("/run/user/1000/gcp-gate/admin/admin.sock", gate));
  assert.ok(sharesMountedDir("/run/user/1000/admin.sock", "/run/user/1000/gcp-gate/x/gate.sock"));
  assert.ok(!sharesMountedDir("/run/user/1000/gcp-gate-admin/admin.sock", gate));
});

Deno.test("sharesMountedDir() sees through a symlinked directory", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.mkdirSync(`${dir}/gate`);
    Deno.symlinkSync(`${dir}/gate`, `${dir}/alias`);
    assert.ok(sharesMountedDir(`${dir}/alias/admin/admin.sock`, `${dir}/gate/gate.sock`));
    assert.ok(!sharesMountedDir(`${dir}/other/admin.sock`, `${dir}/gate/gate.sock`));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
