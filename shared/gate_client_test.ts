import assert from "node:assert/strict";
import { createGateClient } from "./gate_client.ts";
import { GateError } from "./errors.ts";
import { PROTOCOL_HEADER } from "./protocol.ts";

async function rejectsWith(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof GateError, String(err));
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

Deno.test("gate client: a missing socket says where it looked and what to do", async () => {
  const dir = Deno.makeTempDirSync();
  const client = createGateClient({ socketPath: `${dir}/gate.sock`, timeoutMs: 2000 });
  try {
    await rejectsWith(
      client.health(),
      "gate_unreachable",
      /gate socket not found at .*gate\.sock — is gcp-gate running on the host/,
    );
  } finally {
    client.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("gate client: a path that is not a socket is named as such", async () => {
  const dir = Deno.makeTempDirSync();
  Deno.writeTextFileSync(`${dir}/gate.sock`, "");
  const client = createGateClient({ socketPath: `${dir}/gate.sock`, timeoutMs: 2000 });
  try {
    await rejectsWith(client.health(), "gate_unreachable", /is not a socket/);
  } finally {
    client.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("gate client: sends the protocol header, maps error bodies to GateError codes, times out", async () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/gate.sock`;
  const seen: (string | null)[] = [];
  const ac = new AbortController();
  const server = Deno.serve({ path, signal: ac.signal, onListen: () => {} }, async (req) => {
    seen.push(req.headers.get(PROTOCOL_HEADER));
    const url = new URL(req.url);
    if (url.pathname === "/universe-domain") await new Promise((r) => setTimeout(r, 500));
    if (url.pathname === "/token") {
      return Response.json({ error: "approval denied by the human", code: "denied" }, {
        status: 403,
      });
    }
    if (url.pathname === "/identity") return new Response("<html>", { status: 500 });
    return Response.json({ status: "ok", uptime_seconds: 1, version: "t", protocol: 1 });
  });
  const client = createGateClient({ socketPath: path, timeoutMs: 2000 });
  try {
    assert.equal((await client.health()).status, "ok");
    assert.equal(seen[0], "1");
    await rejectsWith(client.token(), "denied", /approval denied/);
    await rejectsWith(client.identity(), "upstream", /not JSON/);
    await rejectsWith(
      client.universeDomain({ timeoutMs: 100 }),
      "timeout",
      /did not answer GET \/universe-domain within 100 ms/,
    );
  } finally {
    client.close();
    ac.abort();
    await server.finished;
    Deno.removeSync(dir, { recursive: true });
  }
});
