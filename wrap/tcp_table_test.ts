import assert from "node:assert/strict";
import { openSockDiag } from "./sock_diag.ts";
import { createSocketFinder, findInTable, type TableReader } from "./tcp_table.ts";

/** Whether this system lets us open a sock_diag socket at all (closed again at once). */
const HAS_SOCK_DIAG = (() => {
  const d = openSockDiag();
  d?.close();
  return d !== undefined;
})();

const ROWS = [
  "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
  "   0: 0100007F:1FED 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1",
  "   1: 0100007F:9C40 0100007F:1FED 06 00000000:00000000 03:00000000 00000000     0        0 0 3",
  "   2: 0100007F:9C41 0100007F:1FED 01 00000000:00000000 00:00000000 00000000  1000        0 222 1",
  "",
].join("\n");

/** Serves `text` in chunks of `size` characters, recording how many were read. */
function chunked(text: string, size: number, reads: number[]): TableReader {
  return {
    readChunks(path, visit) {
      if (!path.endsWith("/net/tcp")) return false;
      for (let i = 0; i < text.length; i += size) {
        reads.push(i);
        if (visit(text.slice(i, i + size))) return true;
      }
      return true;
    },
  };
}

const key = (port: number) => ({
  client: { address: "127.0.0.1", port },
  server: { address: "127.0.0.1", port: 8173 },
});

Deno.test("findInTable() finds a row split across chunks, and stops reading at it", () => {
  for (const size of [7, 50, 97, 4096]) {
    const reads: number[] = [];
    assert.deepEqual(findInTable(key(0x9c41), chunked(ROWS, size, reads), "/p"), {
      inode: "222",
      uid: 1000,
    }, `chunk size ${size}`);
  }
  // A live match ends the read: rows after it are never fetched.
  const reads: number[] = [];
  findInTable(key(0x9c41), chunked(ROWS + "x".repeat(10_000) + "\n", 100, reads), "/p");
  assert.ok(reads.length < 10, `${reads.length} chunks read`);
});

Deno.test("findInTable() reports a TIME_WAIT row as gone (inode 0) and a missing one as undefined", () => {
  assert.deepEqual(findInTable(key(0x9c40), chunked(ROWS, 64, []), "/p"), { inode: "0", uid: 0 });
  assert.equal(findInTable(key(0x9c42), chunked(ROWS, 64, []), "/p"), undefined);
});

Deno.test({
  name: "createSocketFinder() uses sock_diag here and agrees with the /proc table",
  ignore: !HAS_SOCK_DIAG,
  fn: async () => {
    const finder = await createSocketFinder();
    try {
      assert.equal(finder.kind, "sock_diag");
      using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
      const server = await listener.accept();
      const k = {
        client: { address: "127.0.0.1", port: client.localAddr.port },
        server: { address: "127.0.0.1", port: listener.addr.port },
      };
      const viaDiag = finder.find(k);
      assert.ok(viaDiag && viaDiag.inode !== "0");
      assert.deepEqual(viaDiag, findInTable(k));
      assert.equal(viaDiag.uid, Deno.uid());
      client.close();
      await new Promise((r) => setTimeout(r, 50));
      // Closed by its owner: no process holds it any more.
      assert.equal(finder.find(k)?.inode ?? "0", "0");
      server.close();
    } finally {
      finder.close();
    }
  },
});

Deno.test({
  name: "createSocketFinder() reports another uid's socket as that uid",
  // Needs root to connect as another uid (nobody, 65534).
  ignore: Deno.uid() !== 0 || !HAS_SOCK_DIAG,
  fn: async () => {
    const finder = await createSocketFinder();
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const child = new Deno.Command("setpriv", {
      args: [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "bash",
        "-c",
        `exec 3<>/dev/tcp/127.0.0.1/${listener.addr.port}; sleep 30`,
      ],
      stdin: "null",
    }).spawn();
    try {
      const conn = await listener.accept();
      const k = {
        client: { address: "127.0.0.1", port: conn.remoteAddr.port },
        server: { address: "127.0.0.1", port: listener.addr.port },
      };
      assert.equal(finder.find(k)?.uid, 65534);
      assert.equal(findInTable(k)?.uid, 65534);
      conn.close();
    } finally {
      child.kill("SIGKILL");
      await child.status;
      finder.close();
    }
  },
});
