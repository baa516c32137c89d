import assert from "node:assert/strict";
import { type Invocation, loadInvocation } from "../shared/config.ts";
import { GATE_CLI } from "./cli.ts";
import { createLogger } from "../shared/log.ts";
import type { AdminClient } from "./admin_client.ts";
import type { GateStatus } from "./control.ts";
import { formatStatus, reloadCommand, statusCommand } from "./status.ts";

const STATUS: GateStatus = {
  config_file: "/home/e/.config/gcp-gate/config.toml",
  profiles: [{
    name: "web",
    socket_path: "/run/web/gate.sock",
    listening: true,
    connections: { open: 3, max: 256 },
    project: "acme",
    service_account: "dev@acme.iam.gserviceaccount.com",
    prod_service_account: null,
    dev_tokens: [{ key: "cloud-platform|3600", expires_in: 3000 }],
    sessions: [{ id_prefix: "AbCdEfGh", project: "acme", expires_in: 5400 }],
    pending: [{ id: "0a1b2c3d", expires_in: 90 }],
  }, {
    name: "agent\u001b[31m",
    socket_path: "/run/agent/gate.sock",
    listening: false,
    connections: { open: 0, max: 256 },
    project: null,
    service_account: null,
    prod_service_account: "p@x.iam.gserviceaccount.com",
    dev_tokens: [],
    sessions: [],
    pending: [],
  }],
};

Deno.test("formatStatus(): one block per profile with lifetimes, prefixes and pending ids", () => {
  const text = formatStatus(STATUS);
  assert.match(text, /^profile web: listening on \/run\/web\/gate\.sock$/m);
  assert.ok(text.split("\n").includes("  connections:  3 open (at most 256)"), text);
  assert.match(text, /dev tokens: {3}50 min left/);
  assert.match(text, /sessions: {5}AbCdEfGh… 1 h 30 min left/);
  assert.match(text, /pending: {6}0a1b2c3d \(expires in 90 s\)/);
  assert.match(text, /profile agent\[31m: NOT listening/, "control characters are stripped");
  assert.match(text, /prod account: p@x/);
});

function inv(json: boolean): Invocation {
  return loadInvocation(GATE_CLI, json ? ["status", "--json"] : ["reload"], {
    env: (n) => (n === "HOME" ? "/home/e" : undefined),
    readTextFile: () => undefined,
    cwd: () => "/",
  });
}

Deno.test("statusCommand() prints JSON with --json; reloadCommand() names what changed", async () => {
  const out: string[] = [];
  const err: string[] = [];
  const unused = (): Promise<never> => Promise.reject(new Error("unused"));
  const client: AdminClient = {
    health: unused,
    pending: unused,
    decide: unused,
    status: () => Promise.resolve(STATUS),
    reload: () =>
      Promise.resolve({
        started: ["b"],
        stopped: ["c"],
        updated: [],
        needs_restart: ["audit_log"],
      }),
    close: () => {},
  };
  const deps = {
    client: () => client,
    out: (t: string) => out.push(t),
    err: (t: string) => err.push(t),
  };
  const log = createLogger({ write: () => {} });
  assert.equal(await statusCommand(inv(true), [], log, deps), 0);
  assert.deepEqual(JSON.parse(out[0]!), STATUS);
  assert.equal(await reloadCommand(inv(false), [], log, deps), 0);
  assert.equal(out[1], "reloaded: started b; stopped c; updated none");
  assert.match(err[0]!, /applied only after a restart: audit_log/);
});
