import assert from "node:assert/strict";
import { createLogger } from "../shared/log.ts";
import { PROTOCOL_HEADER, PROTOCOL_VERSION } from "../shared/protocol.ts";
import { createAdminHandler, type PendingResponse } from "./admin_routes.ts";
import { createApprovalQueue } from "./approval/queue.ts";
import type { ApprovalRequest } from "./approval/types.ts";
import type { ControlSlot, GateStatus } from "./control.ts";
import { GateError } from "../shared/errors.ts";

const log = createLogger({ write: () => {} });
const H = { [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) };

function req(id: string): ApprovalRequest {
  return {
    id,
    email: "engineer@example.com",
    project: "p",
    scopes: ["s"],
    ttlSeconds: 600,
    reason: undefined,
    command: ["ls"],
    notes: [],
    kind: "session",
  };
}

Deno.test("admin handler: lists pending requests and decides them by id", async () => {
  const queue = createApprovalQueue({ timeoutSeconds: 30, log });
  const handler = createAdminHandler({ queue, log });
  const ac = new AbortController();
  const outcome = queue.step.ask(req("aa11"), { signal: ac.signal, setDeadline: () => {} });
  const list = await handler(new Request("http://gate.invalid/pending", { headers: H }));
  const body = await list.json() as PendingResponse;
  assert.equal(body.pending.length, 1);
  assert.equal(body.pending[0]?.id, "aa11");
  assert.equal(body.pending[0]?.reason, null);
  assert.ok((body.pending[0]?.expires_in ?? 0) > 25);

  const res = await handler(
    new Request("http://gate.invalid/approve?id=aa11", { method: "POST", headers: H }),
  );
  assert.equal(res.status, 200);
  assert.equal((await outcome).kind, "approved");
  const again = await handler(
    new Request("http://gate.invalid/deny?id=aa11", { method: "POST", headers: H }),
  );
  assert.equal(again.status, 404);
  assert.match((await again.json()).error, /no prod request aa11 is waiting/);
});

Deno.test("admin handler: refuses bad ids, wrong methods, missing protocol header, unknown paths", async () => {
  const handler = createAdminHandler({
    queue: createApprovalQueue({ timeoutSeconds: 5, log }),
    log,
  });
  const status = async (url: string, init: RequestInit = {}): Promise<number> =>
    (await handler(new Request(`http://gate.invalid${url}`, init))).status;
  assert.equal(await status("/approve?id=../x", { method: "POST", headers: H }), 400);
  assert.equal(await status("/approve?id=abc", { headers: H }), 405);
  assert.equal(await status("/pending"), 400);
  assert.equal(await status("/token", { headers: H }), 404);
  assert.equal(await status("/health"), 200);
});

Deno.test("admin handler: /status adds each profile's pending requests; /reload answers the daemon's result or its config error", async () => {
  const queue = createApprovalQueue({ timeoutSeconds: 30, log });
  const control: ControlSlot = { current: undefined };
  const handler = createAdminHandler({ queue, log, control });
  const before = await handler(new Request("http://gate.invalid/status", { headers: H }));
  assert.equal(before.status, 503, "not serving yet");
  const profile = (name: string) => ({
    name,
    socket_path: `/run/${name}/gate.sock`,
    listening: true,
    connections: { open: 3, max: 256 },
    project: null,
    service_account: null,
    prod_service_account: null,
    dev_tokens: [],
    sessions: [],
  });
  let fail = false;
  control.current = {
    status: () => ({ config_file: "/c.toml", profiles: [profile("web"), profile("api")] }),
    reload: () =>
      fail
        ? Promise.reject(new GateError("config", "config file /c.toml: line 1, column 2: bad"))
        : Promise.resolve({ started: ["x"], stopped: [], updated: [], needs_restart: [] }),
  };
  const ac = new AbortController();
  void queue.step.ask({ ...req("bb22"), profile: "api" }, {
    signal: ac.signal,
    setDeadline: () => {},
  });
  const s = await (await handler(new Request("http://gate.invalid/status", { headers: H })))
    .json() as GateStatus;
  assert.deepEqual(s.profiles.map((p) => p.pending.map((x) => x.id)), [[], ["bb22"]]);
  const pending = await (await handler(new Request("http://gate.invalid/pending", { headers: H })))
    .json() as PendingResponse;
  assert.equal(pending.pending[0]?.profile, "api");
  const post = (path: string) =>
    handler(new Request(`http://gate.invalid${path}`, { method: "POST", headers: H }));
  assert.deepEqual((await (await post("/reload")).json()).started, ["x"]);
  fail = true;
  const bad = await post("/reload");
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).code, "config");
  ac.abort();
});
