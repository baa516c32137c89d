import assert from "node:assert/strict";
import { type Config, loadInvocation } from "../shared/config.ts";
import { GateError, isGateError } from "../shared/errors.ts";
import type { GateClient } from "../shared/gate_client.ts";
import type { HealthResponse } from "../shared/protocol.ts";
import type { SocketTrustDeps } from "../shared/socket_trust.ts";
import { WRAP_CLI } from "./cli.ts";
import { preflightGate } from "./preflight.ts";

const SOCK = "/run/gcp-gate/gate.sock";

function config(env: Record<string, string> = {}): Config {
  return loadInvocation(WRAP_CLI, [], {
    env: (k) => ({ HOME: "/home/u", GCP_GATE_SOCKET_PATH: SOCK, ...env })[k],
    readTextFile: () => undefined,
    cwd: () => "/",
  }).config;
}

function info(uid: number, mode: number, isSocket: boolean): Deno.FileInfo {
  return { ...Deno.statSync("/"), uid, mode, isSocket, isDirectory: !isSocket };
}

/** Our 0600 socket in our 0700 directory; `ro`: the directory is a read-only mount. */
function fs(ro: boolean): SocketTrustDeps {
  return {
    uid: () => 1000,
    stat: (p) => (p === SOCK ? info(1000, 0o140600, true) : info(1000, 0o40700, false)),
    renameOnto: () => {
      if (ro) throw Object.assign(new Error("read-only"), { code: "EROFS" });
    },
  };
}

function gate(health: () => Promise<HealthResponse>): GateClient {
  const unused = (): never => assert.fail("only health() is expected before approval");
  return {
    health,
    token: unused,
    identity: unused,
    projectNumber: unused,
    universeDomain: unused,
    identityToken: unused,
    openSession: unused,
    getSession: unused,
    deleteSession: unused,
    reportRefusal: unused,
    close: () => {},
  };
}

const healthy = gate(() =>
  Promise.resolve({
    status: "ok",
    uptime_seconds: 1,
    version: "t",
    protocol: 1,
    session_lease: true,
  })
);

Deno.test("preflightGate() passes a read-only mount with a live gate", async () => {
  await preflightGate({ config: config(), gate: healthy, deps: fs(true) });
});

Deno.test("preflightGate() refuses a writable directory unless allow_writable_socket_dir", async () => {
  await assert.rejects(
    preflightGate({ config: config(), gate: healthy, deps: fs(false) }),
    (e: unknown) => isGateError(e, "untrusted_socket") && /readonly/.test(e.message),
  );
  await preflightGate({
    config: config({ GCP_GATE_ALLOW_WRITABLE_SOCKET_DIR: "true" }),
    gate: healthy,
    deps: fs(false),
  });
});

Deno.test("preflightGate() turns a dead or silent gate into one line about the ssh session", async () => {
  const dead = gate(() =>
    Promise.reject(new GateError("gate_unreachable", "gate socket x exists but nothing answers"))
  );
  await assert.rejects(
    preflightGate({ config: config(), gate: dead, deps: fs(true) }),
    (e: unknown) =>
      isGateError(e, "gate_unreachable") && /reconnect the ssh session/.test(e.message),
  );
  const silent = gate(() => Promise.reject(new GateError("timeout", "no answer")));
  await assert.rejects(
    preflightGate({ config: config(), gate: silent, deps: fs(true) }),
    (e: unknown) =>
      isGateError(e, "gate_unreachable") && /did not answer within 5 s/.test(e.message),
  );
});

Deno.test("preflightGate() refuses a gate that cannot bind a session to a lease", async () => {
  const old = gate(() =>
    Promise.resolve({ status: "ok", uptime_seconds: 1, version: "0.1.0", protocol: 1 })
  );
  await assert.rejects(
    preflightGate({ config: config(), gate: old, deps: fs(true) }),
    (err: Error) => /older than this with-prod .*session lease/.test(err.message),
  );
});

Deno.test("preflightGate() refuses a directory root planted for us (not ours, 0755, writable mount)", async () => {
  // Root in the container renamed the mount aside and put its own directory,
  // owned by another uid with no write bit for us, holding a 0600 socket chowned to us.
  const planted: SocketTrustDeps = {
    uid: () => 1000,
    stat: (p) => (p === SOCK ? info(1000, 0o140600, true) : info(0, 0o40755, false)),
    renameOnto: () => {}, // a writable mount: no EROFS
  };
  await assert.rejects(
    preflightGate({ config: config(), gate: healthy, deps: planted }),
    (err: Error) => /is not a read-only mount .*readonly/.test(err.message),
  );
});
