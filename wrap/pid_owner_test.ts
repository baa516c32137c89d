import assert from "node:assert/strict";
import {
  type ConnectionKey,
  createOwnerCheck,
  parseStat,
  procAddresses,
  type ProcDeps,
  REAL_PROC,
} from "./pid_owner.ts";
import { findInTable } from "./tcp_table.ts";

const UID = Deno.uid() ?? -1;

/** Accepts one connection made by `script` (bash, `$PORT` set) and hands it to `fn`. */
async function withConnection(
  script: string,
  fn: (key: ConnectionKey, child: Deno.ChildProcess) => void | Promise<void>,
): Promise<void> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  const child = new Deno.Command("bash", {
    args: ["-c", script],
    env: { PORT: String(port) },
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    const conn = await listener.accept();
    try {
      const remote = conn.remoteAddr as Deno.NetAddr;
      await fn({
        client: { address: remote.hostname, port: remote.port },
        server: { address: "127.0.0.1", port },
      }, child);
    } finally {
      conn.close();
    }
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
  }
}

// bash's /dev/tcp connects from bash itself; `exec` keeps the fd open while it sleeps.
const CONNECT = "exec 3<>/dev/tcp/127.0.0.1/$PORT; sleep 30";

Deno.test("procAddresses() spells 127.0.0.1 the way /proc/net/tcp{,6} does", () => {
  const a = procAddresses({ address: "127.0.0.1", port: 8173 });
  assert.deepEqual(a.v4, ["0100007F:1FED"]);
  assert.deepEqual(a.v6, ["0000000000000000FFFF00000100007F:1FED"]);
  assert.deepEqual(procAddresses({ address: "::1", port: 80 }).v6, [
    "00000000000000000000000001000000:0050",
  ]);
  assert.deepEqual(procAddresses({ address: "example.com", port: 80 }), { v4: [], v6: [] });
});

Deno.test("parseStat() handles a command name with spaces and parentheses", () => {
  assert.deepEqual(parseStat("42 (a) b (c)) S 7 42 42 0 -1"), { comm: "a) b (c)", ppid: 7 });
  assert.equal(parseStat("garbage"), undefined);
});

Deno.test("findInTable() finds the client's socket of a real connection", async () => {
  await withConnection(CONNECT, async (key, child) => {
    const sock = findInTable(key);
    assert.ok(sock && sock.inode !== "0", "no live socket found");
    assert.equal(sock.uid, UID);
    const inode = sock.inode;
    // The inode belongs to bash's fd 3, not to our (server-side) socket.
    const fds = [...Deno.readDirSync(`/proc/${child.pid}/fd`)];
    const links = fds.map((f) => REAL_PROC.readLink(`/proc/${child.pid}/fd/${f.name}`));
    assert.ok(links.includes(`socket:[${inode}]`));
    // A different server port (same client port) must not match: both ends count.
    const wrong = { ...key, server: { ...key.server, port: key.server.port === 1 ? 2 : 1 } };
    assert.equal(findInTable(wrong), undefined);
    await Promise.resolve();
  });
});

Deno.test("createOwnerCheck() allows the wrapped process itself", async () => {
  await withConnection(CONNECT, (key, child) => {
    const v = createOwnerCheck({ rootPid: child.pid, uid: UID }).decide(key);
    assert.equal(v.allowed, true, v.reason);
    assert.equal(v.pid, child.pid);
    // bash execs its last command, so the same pid may now be `sleep`.
    assert.ok(v.comm === "bash" || v.comm === "sleep", v.comm);
  });
});

Deno.test("createOwnerCheck() allows a grandchild of the wrapped process", async () => {
  // The connecting bash is a child of the outer bash (which waits for it).
  await withConnection(`bash -c '${CONNECT}' & wait`, (key, child) => {
    const check = createOwnerCheck({ rootPid: child.pid, uid: UID });
    const v = check.decide(key);
    assert.equal(v.allowed, true, v.reason);
    assert.notEqual(v.pid, child.pid);
    try {
      // Decided again (e.g. a second connection from the same process): still allowed.
      assert.equal(check.decide(key).allowed, true);
    } finally {
      if (v.pid) Deno.kill(v.pid, "SIGKILL");
    }
  });
});

Deno.test("createOwnerCheck() denies a process outside the tree and names it", async () => {
  const other = new Deno.Command("sleep", { args: ["30"], stdin: "null" }).spawn();
  try {
    await withConnection(CONNECT, (key, child) => {
      const check = createOwnerCheck({ rootPid: other.pid, uid: UID });
      const v = check.decide(key);
      assert.equal(v.allowed, false);
      assert.equal(v.kind, "outside_tree");
      assert.match(v.reason, /not a descendant/);
      // Naming is a separate, slow scan, made only for reported refusals.
      assert.equal(v.pid, undefined);
      assert.equal(check.name(v.inode!)?.pid, child.pid, "the full scan should name the caller");
    });
  } finally {
    other.kill("SIGKILL");
    await other.status;
  }
});

Deno.test("createOwnerCheck() calls a connection with no socket gone, not refused", () => {
  const v = createOwnerCheck({ rootPid: Deno.pid, uid: UID }).decide({
    client: { address: "127.0.0.1", port: 1 },
    server: { address: "127.0.0.1", port: 2 },
  });
  assert.equal(v.allowed, false);
  assert.equal(v.kind, "gone");
  assert.equal(v.pid, undefined);
});

Deno.test("createOwnerCheck() searches descendants before scanning every process", () => {
  // A fake /proc: root 10 → child 11 holds the socket; 200 unrelated processes.
  const reads: string[] = [];
  const files: Record<string, string> = {
    "/p/net/tcp": "  sl local rem st\n 0: 0100007F:9C40 0100007F:1FED 01 0:0 0:0 0 1000 0 777 1\n",
    "/p/10/stat": "10 (root) S 1 10",
    "/p/11/stat": "11 (client) S 10 10",
  };
  const pids = ["10", "11"];
  for (let i = 0; i < 200; i++) {
    pids.push(String(1000 + i));
    files[`/p/${1000 + i}/stat`] = `${1000 + i} (other) S 1 1`;
  }
  const deps: ProcDeps = {
    readTextFile: (p) => files[p],
    listDir: (p) => {
      reads.push(p);
      if (p === "/p") return pids;
      if (p === "/p/11/fd") return ["0", "3"];
      return p.endsWith("/fd") ? ["0"] : [];
    },
    readLink: (p) => (p === "/p/11/fd/3" ? "socket:[777]" : "/dev/null"),
  };
  const check = createOwnerCheck({ rootPid: 10, uid: 1000, procRoot: "/p" }, deps);
  const key = {
    client: { address: "127.0.0.1", port: 40000 },
    server: { address: "127.0.0.1", port: 8173 },
  };
  const v = check.decide(key);
  assert.equal(v.allowed, true);
  assert.equal(v.pid, 11);
  const fdReads = reads.filter((p) => p.endsWith("/fd"));
  assert.deepEqual(fdReads, ["/p/10/fd", "/p/11/fd"], "only the tree's fds are read");
  // Next time the known descendant is tried first: no /proc listing at all.
  reads.length = 0;
  assert.equal(check.decide(key).allowed, true);
  assert.ok(!reads.includes("/p"));
});

Deno.test("createOwnerCheck() re-checks ancestry of a pid found by the descendant scan", () => {
  // The kernel's children list still names 11 under root 10, but by the time
  // its fds are read pid 11 has been reused by an outsider (parent 1).
  const files: Record<string, string> = {
    "/p/net/tcp": "  sl local rem st\n 0: 0100007F:9C40 0100007F:1FED 01 0:0 0:0 0 1000 0 777 1\n",
    "/p/10/stat": "10 (root) S 1 10",
    "/p/10/task/10/children": "11 ",
    "/p/11/stat": "11 (intruder) S 1 1",
  };
  const deps: ProcDeps = {
    readTextFile: (p) => files[p],
    listDir: (p) => {
      if (p === "/p") return ["1", "10", "11"];
      if (p === "/p/10/task") return ["10"];
      if (p === "/p/11/task") return ["11"];
      if (p === "/p/11/fd") return ["0", "3"];
      return p.endsWith("/fd") ? ["0"] : [];
    },
    readLink: (p) => (p === "/p/11/fd/3" ? "socket:[777]" : "/dev/null"),
  };
  const check = createOwnerCheck({ rootPid: 10, uid: 1000, procRoot: "/p" }, deps);
  const v = check.decide({
    client: { address: "127.0.0.1", port: 40000 },
    server: { address: "127.0.0.1", port: 8173 },
  });
  assert.equal(v.allowed, false, v.reason);
  assert.equal(v.kind, "outside_tree");
  assert.equal(check.name(v.inode!)?.pid, 11);
});

/** A fake /proc with one connection row (client port 40000 → 8173) owned by `uid`, inode `inode`. */
function oneRowProc(uid: number, inode: string, reads: string[]): ProcDeps {
  const files: Record<string, string> = {
    "/p/net/tcp":
      `  sl local rem st\n 0: 0100007F:9C40 0100007F:1FED 01 0:0 0:0 0 ${uid} 0 ${inode} 1\n`,
    "/p/10/stat": "10 (root) S 1 10",
  };
  return {
    readTextFile: (p) => {
      reads.push(p);
      return files[p];
    },
    listDir: (p) => {
      reads.push(p);
      return p === "/p" ? ["1", "10"] : [];
    },
    readLink: (p) => {
      reads.push(p);
      return undefined;
    },
  };
}

const KEY = {
  client: { address: "127.0.0.1", port: 40000 },
  server: { address: "127.0.0.1", port: 8173 },
};

Deno.test("createOwnerCheck() refuses another uid's socket at once, without reading /proc/<pid>", () => {
  const reads: string[] = [];
  const v = createOwnerCheck(
    { rootPid: 10, uid: 1000, procRoot: "/p" },
    oneRowProc(1001, "777", reads),
  )
    .decide(KEY);
  assert.equal(v.allowed, false);
  assert.equal(v.kind, "other_user");
  assert.equal(v.uid, 1001);
  assert.match(v.reason, /another user \(uid 1001\)/);
  assert.deepEqual(reads, ["/p/net/tcp"], "only the TCP table was read");
});

Deno.test("createOwnerCheck() calls a socket no process holds (inode 0) gone", () => {
  const reads: string[] = [];
  const v = createOwnerCheck(
    { rootPid: 10, uid: 1000, procRoot: "/p" },
    oneRowProc(1000, "0", reads),
  )
    .decide(KEY);
  assert.equal(v.kind, "gone");
  // tcp6 is searched too (a live dual-stack socket could be there), nothing else.
  assert.deepEqual(reads, ["/p/net/tcp", "/p/net/tcp6"]);
});
