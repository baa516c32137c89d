import assert from "node:assert/strict";
import { pinDirectory } from "./pinned_dir.ts";

function answerOnce(path: string, text: string): Deno.UnixListener {
  const l = Deno.listen({ transport: "unix", path });
  (async () => {
    for await (const c of l) {
      await c.write(new TextEncoder().encode(text)).catch(() => {});
      c.close();
    }
  })().catch(() => {});
  return l;
}

async function readFrom(path: string): Promise<string> {
  const c = await Deno.connect({ transport: "unix", path });
  const buf = new Uint8Array(64);
  const n = await c.read(buf);
  c.close();
  return new TextDecoder().decode(buf.subarray(0, n ?? 0));
}

Deno.test({
  name: "pinDirectory(): renaming a parent cannot swap the socket reached through the pin",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const root = Deno.makeTempDirSync({ prefix: "gcp-gate-pin-" });
    Deno.mkdirSync(`${root}/run/gcp-gate`, { recursive: true });
    const real = answerOnce(`${root}/run/gcp-gate/gate.sock`, "real gate");
    const pin = pinDirectory(`${root}/run/gcp-gate`);
    assert.ok(pin, "libc over FFI and /proc are available here");
    // The attack: move the parent away, put a relay where the path used to lead.
    Deno.renameSync(`${root}/run`, `${root}/moved`);
    Deno.mkdirSync(`${root}/run/gcp-gate`, { recursive: true });
    const relay = answerOnce(`${root}/run/gcp-gate/gate.sock`, "relay");
    try {
      assert.equal(await readFrom(`${root}/run/gcp-gate/gate.sock`), "relay", "the path moved");
      assert.equal(await readFrom(`${pin.path}/gate.sock`), "real gate", "the pin did not");
      assert.ok(Deno.statSync(pin.path).isDirectory);
    } finally {
      pin.close();
      real.close();
      relay.close();
      Deno.removeSync(root, { recursive: true });
    }
  },
});

Deno.test("pinDirectory(): a missing directory pins nothing", () => {
  assert.equal(pinDirectory("/nonexistent/gcp-gate"), undefined);
});
