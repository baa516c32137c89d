import assert from "node:assert/strict";
import { isGateError } from "../shared/errors.ts";
import { DEFAULT_REMOTE_SOCKET, sshConfigStanza } from "./ssh_config.ts";

Deno.test("sshConfigStanza() forwards the remote socket to the gate's, unlinks stale ones, fails loudly", () => {
  const text = sshConfigStanza({
    host: "build-vm-3",
    localSocket: "/run/user/1000/gcp-gate/gate.sock",
    remoteSocket: DEFAULT_REMOTE_SOCKET,
  });
  const directives = text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
  assert.deepEqual(directives, [
    "Host build-vm-3",
    "  RemoteForward /home/%r/.gcp-gate/gate.sock /run/user/1000/gcp-gate/gate.sock",
    "  StreamLocalBindUnlink yes",
    "  ExitOnForwardFailure yes",
    "  ServerAliveInterval 15",
    "  ServerAliveCountMax 3",
  ]);
  assert.match(text, /sshd_config: StreamLocalBindUnlink yes/);
  assert.match(
    text,
    /"type=bind,source=\/home\/<remote user>\/\.gcp-gate,target=\/run\/gcp-gate,readonly"/,
  );
});

Deno.test("sshConfigStanza() refuses a host or path that could inject config lines", () => {
  for (
    const o of [
      { host: "vm\n  ProxyCommand evil", remoteSocket: DEFAULT_REMOTE_SOCKET },
      { host: "vm", remoteSocket: "relative/gate.sock" },
      { host: "vm", remoteSocket: "/tmp/a b.sock" },
    ]
  ) {
    assert.throws(
      () => sshConfigStanza({ ...o, localSocket: "/run/gcp-gate/gate.sock" }),
      (e: unknown) => isGateError(e, "usage"),
      JSON.stringify(o),
    );
  }
});
