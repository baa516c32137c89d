/**
 * Finding the client's socket of a loopback TCP connection: its inode (to
 * find the process holding it), its owner uid (to refuse other users without
 * looking further) and whether it still exists.
 *
 * Preferred: the kernel's sock_diag lookup by exact 4-tuple (sock_diag.ts),
 * whose cost does not depend on how many sockets the machine has. Fallback:
 * /proc/net/tcp{,6}, read in chunks and searched for the connection's
 * address text, so only the matching row is split and the read stops at it.
 */
import { openSockDiag, type SockDiag } from "./sock_diag.ts";

/** One end of a TCP connection. */
export interface TcpEndpoint {
  readonly address: string;
  readonly port: number;
}

/** A connection as the server sees it. */
export interface ConnectionKey {
  /** The peer (the process we want to identify). */
  readonly client: TcpEndpoint;
  /** Our listening address. */
  readonly server: TcpEndpoint;
}

/** The client's socket as the kernel lists it. */
export interface ClientSocket {
  /** Socket inode; "0" when no process holds it any more (closed, orphaned, TIME_WAIT). */
  readonly inode: string;
  /** The socket owner's uid. */
  readonly uid: number;
}

/** Finds the client's socket of `key`; undefined when the kernel has none. */
export type SocketFinder = (key: ConnectionKey) => ClientSocket | undefined;

/** Reads of /proc/net/tcp* (a typed fake can stand in for tests). */
export interface TableReader {
  /**
   * Calls `visit` with successive chunks of the file's text until it returns
   * true or the file ends. False when the file cannot be read.
   */
  readChunks(path: string, visit: (chunk: string) => boolean): boolean;
}

/** Reads with Deno's sync file API, 64 KiB at a time (needs --allow-all for /proc). */
export const REAL_TABLE: TableReader = {
  readChunks(path, visit) {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path);
    } catch {
      return false;
    }
    try {
      const buf = new Uint8Array(64 * 1024);
      const dec = new TextDecoder();
      for (;;) {
        const n = file.readSync(buf);
        if (n === null || n === 0) return true;
        if (visit(dec.decode(buf.subarray(0, n)))) return true;
      }
    } catch {
      return true;
    } finally {
      file.close();
    }
  },
};

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function hex(bytes: readonly number[]): string {
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();
}

/** The kernel prints each 32-bit word of an address in host byte order. */
function word(bytes: readonly number[]): string {
  return hex(LITTLE_ENDIAN ? [...bytes].reverse() : [...bytes]);
}

function ipv4Bytes(address: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  if (!m) return undefined;
  const bytes = m.slice(1).map(Number);
  return bytes.every((b) => b <= 255) ? bytes : undefined;
}

/**
 * The spellings of `ep` in /proc/net/tcp (IPv4) and /proc/net/tcp6 (IPv4-mapped
 * or ::1), as `ADDR:PORT` upper-case hex.
 */
export function procAddresses(ep: TcpEndpoint): { v4: string[]; v6: string[] } {
  const port = ep.port.toString(16).padStart(4, "0").toUpperCase();
  const addr = ep.address.replace(/^\[|\]$/g, "");
  const v4 = ipv4Bytes(addr.replace(/^::ffff:/i, ""));
  if (v4) {
    const mapped = word([0, 0, 0, 0]) + word([0, 0, 0, 0]) + word([0, 0, 0xff, 0xff]) + word(v4);
    return { v4: [`${word(v4)}:${port}`], v6: [`${mapped}:${port}`] };
  }
  if (addr === "::1") {
    const z = word([0, 0, 0, 0]);
    return { v4: [], v6: [`${z}${z}${z}${word([0, 0, 0, 1])}:${port}`] };
  }
  return { v4: [], v6: [] };
}

/** Fields after `local remote `: st tx:rx tr:when retrnsmt uid timeout inode. */
function rowAfter(text: string, from: number): ClientSocket | undefined {
  const end = text.indexOf("\n", from);
  const f = text.slice(from, end < 0 ? text.length : end).trim().split(/\s+/);
  const uid = Number(f[4]);
  const inode = f[6];
  if (!Number.isInteger(uid) || inode === undefined || !/^\d+$/.test(inode)) return undefined;
  return { inode, uid };
}

/**
 * The client's socket of `key` from /proc/net/tcp, then tcp6 (a dual-stack
 * client's v4-mapped socket). The needle `" <local> <remote> "` can only
 * match at the address columns (the other hex columns have other widths),
 * so rows are not split; the read stops at the first live match.
 */
export function findInTable(
  key: ConnectionKey,
  reader: TableReader = REAL_TABLE,
  procRoot = "/proc",
): ClientSocket | undefined {
  const client = procAddresses(key.client);
  const server = procAddresses(key.server);
  let gone: ClientSocket | undefined;
  const tables: [string, string[], string[]][] = [
    ["tcp", client.v4, server.v4],
    ["tcp6", client.v6, server.v6],
  ];
  for (const [table, locals, remotes] of tables) {
    const needle = locals[0] && remotes[0] ? ` ${locals[0]} ${remotes[0]} ` : undefined;
    if (!needle) continue;
    let carry = "";
    let found: ClientSocket | undefined;
    reader.readChunks(`${procRoot}/net/${table}`, (chunk) => {
      // Keep the last partial line for the next chunk.
      const text = carry + chunk;
      const lastNl = text.lastIndexOf("\n");
      const whole = lastNl < 0 ? "" : text.slice(0, lastNl + 1);
      carry = lastNl < 0 ? text : text.slice(lastNl + 1);
      for (let at = whole.indexOf(needle); at >= 0; at = whole.indexOf(needle, at + 1)) {
        const row = rowAfter(whole, at + needle.length);
        if (!row) continue;
        if (row.inode !== "0") {
          found = row;
          return true;
        }
        gone ??= row;
      }
      return false;
    });
    if (!found && carry.includes(needle)) {
      const row = rowAfter(carry, carry.indexOf(needle) + needle.length);
      if (row && row.inode !== "0") found = row;
      else gone ??= row;
    }
    if (found) return found;
  }
  return gone;
}

/** A finder and the resources behind it. */
export interface SocketFinderHandle {
  readonly find: SocketFinder;
  /** "sock_diag" or "proc" (for logs and benchmarks). */
  readonly kind: string;
  close(): void;
}

/** The sock_diag states in which the client's socket may still be held by a process. */
const TIME_WAIT = 6;
const LISTEN = 10;

/**
 * The best finder this system allows: sock_diag when a self-test on a real
 * loopback connection passes, else the /proc table search. `close()` frees
 * the netlink socket.
 */
export async function createSocketFinder(): Promise<SocketFinderHandle> {
  const fallback = { find: (k: ConnectionKey) => findInTable(k), kind: "proc", close() {} };
  const diag = openSockDiag();
  if (!diag) return fallback;
  if (!(await sockDiagWorks(diag))) {
    diag.close();
    return fallback;
  }
  return {
    kind: "sock_diag",
    find(key) {
      let s;
      try {
        s = diag.find(key.client, key.server);
      } catch {
        return findInTable(key);
      }
      if (!s) return undefined;
      // A TIME_WAIT or listening entry is not a caller's socket.
      if (s.state === TIME_WAIT || s.state === LISTEN) return { inode: "0", uid: s.uid };
      return { inode: String(s.inode), uid: s.uid };
    },
    close: () => diag.close(),
  };
}

/**
 * True when `diag` finds a loopback connection we make ourselves, with our
 * uid and the inode our own fd table shows: a kernel or sandbox that answers
 * wrongly must not be trusted to vet connections.
 */
export async function sockDiagWorks(diag: SockDiag): Promise<boolean> {
  let listener: Deno.TcpListener | undefined;
  let client: Deno.TcpConn | undefined;
  let server: Deno.TcpConn | undefined;
  try {
    listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepted = listener.accept();
    client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    server = await accepted;
    const local = client.localAddr;
    const s = diag.find({ address: "127.0.0.1", port: local.port }, {
      address: "127.0.0.1",
      port: listener.addr.port,
    });
    if (!s || s.state !== 1 || s.uid !== Deno.uid() || s.inode === 0) return false;
    const target = `socket:[${s.inode}]`;
    for (const e of Deno.readDirSync("/proc/self/fd")) {
      try {
        if (Deno.readLinkSync(`/proc/self/fd/${e.name}`) === target) return true;
      } catch { /* closed meanwhile */ }
    }
    return false;
  } catch {
    return false;
  } finally {
    for (const c of [client, server, listener]) {
      try {
        c?.close();
      } catch { /* closed */ }
    }
  }
}
