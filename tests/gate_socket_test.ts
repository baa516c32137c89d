/**
 * Socket and process safety of the built gate: what it refuses at the socket
 * path, what it creates, and how it stops.
 */
import assert from "node:assert/strict";
import { createGateClient } from "../shared/gate_client.ts";
import { baseEnv, run, start, tempDir } from "./_utils.ts";
import { startFakeGoogle } from "./fakes/google.ts";

interface Home {
  readonly home: string;
  readonly dir: string;
  readonly socket: string;
  readonly config: string;
  readonly env: Record<string, string>;
}

/** A temp home with a gate config whose socket lives in `<home>/run/gate-dir/`. */
function makeHome(home: string, endpointsToml: string): Home {
  Deno.mkdirSync(`${home}/run`, { mode: 0o700 });
  Deno.chmodSync(`${home}/run`, 0o700);
  const dir = `${home}/run/gate-dir`;
  const socket = `${dir}/gate.sock`;
  const config = `${home}/gate.toml`;
  Deno.writeTextFileSync(
    config,
    `socket_path = "${socket}"\ncredentials_file = "${home}/adc.json"\n` +
      `service_account = "dev@demo-project.iam.gserviceaccount.com"\n${endpointsToml}`,
  );
  return { home, dir, socket, config, env: baseEnv(home) };
}

async function refused(h: Home, re: RegExp): Promise<void> {
  const res = await run("gcp-gate", ["--config", h.config], { env: h.env, timeoutMs: 20_000 });
  assert.equal(res.code, 1, `expected exit 1:\n${res.stderr}`);
  assert.match(res.stderr, re);
}

Deno.test("gcp-gate refuses an unsafe socket directory instead of repairing it", async () => {
  await using fake = await startFakeGoogle();
  await using tmp = tempDir();
  const h = makeHome(tmp.path, fake.endpointsToml());

  // A symlinked directory: could point anywhere.
  Deno.mkdirSync(`${tmp.path}/elsewhere`, { mode: 0o700 });
  Deno.symlinkSync(`${tmp.path}/elsewhere`, h.dir);
  await refused(h, /is a symlink; refusing/);
  Deno.removeSync(h.dir);

  // A directory others can enter: refused with the fix, and left as the user made it.
  Deno.mkdirSync(h.dir);
  Deno.chmodSync(h.dir, 0o755);
  await refused(h, /accessible to other users \(mode 755\); run: chmod 700/);
  assert.equal(Deno.statSync(h.dir).mode! & 0o777, 0o755, "never silently narrowed");
  Deno.chmodSync(h.dir, 0o700);

  // At the socket path: a dangling symlink, a live symlink, a regular file.
  Deno.symlinkSync(`${tmp.path}/nowhere.sock`, h.socket);
  await refused(h, /is a symlink; refusing to bind there/);
  Deno.removeSync(h.socket);
  Deno.writeTextFileSync(`${tmp.path}/target`, "x");
  Deno.symlinkSync(`${tmp.path}/target`, h.socket);
  await refused(h, /is a symlink/);
  Deno.removeSync(h.socket);
  Deno.writeTextFileSync(h.socket, "not a socket");
  await refused(h, /exists and is not a socket/);
  assert.equal(Deno.readTextFileSync(h.socket), "not a socket", "left untouched");
});

Deno.test("gcp-gate creates a private socket, refuses a second gate, replaces a stale socket and cleans up on SIGTERM", async () => {
  await using fake = await startFakeGoogle();
  await using tmp = tempDir();
  const h = makeHome(tmp.path, fake.endpointsToml());
  Deno.writeTextFileSync(`${tmp.path}/adc.json`, fake.adcJson());

  // A stale socket of a gate that died: nothing answers there.
  Deno.mkdirSync(h.dir, { mode: 0o700 });
  Deno.chmodSync(h.dir, 0o700);
  // (Deno unlinks its own sockets on close, so let another process die holding one.)
  const bind = await new Deno.Command("/usr/bin/python3", {
    args: ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", h.socket],
  }).output();
  assert.ok(bind.success, new TextDecoder().decode(bind.stderr));
  assert.ok(Deno.lstatSync(h.socket).isSocket, "the stale socket file stays behind");

  const gate = await start("gcp-gate", ["--config", h.config], {
    env: h.env,
    ready: /ready: listening on/,
  });
  try {
    assert.equal(Deno.statSync(h.dir).mode! & 0o777, 0o700);
    assert.equal(Deno.lstatSync(h.socket).mode! & 0o777, 0o600);
    const client = createGateClient({ socketPath: h.socket });
    assert.equal((await client.health()).status, "ok");
    client.close();

    const second = await run("gcp-gate", ["--config", h.config], { env: h.env });
    assert.equal(second.code, 1);
    assert.match(second.stderr, /another gate is already running/);
    assert.ok(Deno.lstatSync(h.socket).isSocket, "the live gate's socket is left alone");

    gate.kill("SIGTERM");
    const status = await gate.status;
    assert.equal(status.code, 0, gate.output());
    assert.throws(() => Deno.lstatSync(h.socket), Deno.errors.NotFound, "socket removed");
  } finally {
    await gate[Symbol.asyncDispose]();
  }
});

Deno.test("gcp-gate lets an in-flight request finish on SIGTERM", async () => {
  await using fake = await startFakeGoogle();
  await using tmp = tempDir();
  const h = makeHome(tmp.path, fake.endpointsToml());
  Deno.writeTextFileSync(`${tmp.path}/adc.json`, fake.adcJson());
  await using gate = await start("gcp-gate", ["--config", h.config], {
    env: h.env,
    ready: /ready: listening on/,
  });
  fake.inject({ match: /:generateAccessToken$/, delayMs: 800 });
  const client = createGateClient({ socketPath: h.socket });
  try {
    const pending = client.token();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(fake.count(/:generateAccessToken$/), 1, "the mint is in flight");
    gate.kill("SIGTERM");
    const t = await pending;
    assert.ok(t.access_token.length > 0, "the in-flight request got its token");
    assert.equal((await gate.status).code, 0, gate.output());
  } finally {
    client.close();
  }
});
