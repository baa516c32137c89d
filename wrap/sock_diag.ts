/**
 * One TCP socket by its exact 4-tuple, from the kernel's NETLINK_SOCK_DIAG
 * (the interface `ss` uses), through libc over Deno's FFI.
 *
 * Why: /proc/net/tcp lists every socket of the network namespace, TIME_WAIT
 * ones included; with ~20,000 of them (a client that opens a connection per
 * request makes them itself) reading it costs tens of milliseconds per new
 * connection. A SOCK_DIAG_BY_FAMILY request without NLM_F_DUMP is a hash
 * lookup in the kernel: its cost does not grow with the table.
 *
 * with-prod already runs with --allow-all (Deno lets only that read /proc),
 * which includes FFI. Where this cannot work (no glibc `libc.so.6`, netlink
 * blocked by a sandbox, a kernel without inet_diag) {@linkcode openSockDiag}
 * returns undefined after a self-test and callers read /proc/net/tcp instead.
 */

/** What the kernel says about one socket. */
export interface DiagSocket {
  /** TCP state (1 = ESTABLISHED, 6 = TIME_WAIT, 10 = LISTEN, …). */
  readonly state: number;
  /** Owner uid of the socket (the creator's effective uid). */
  readonly uid: number;
  /** Socket inode, 0 when no process holds it any more (orphaned, TIME_WAIT). */
  readonly inode: number;
}

/** A 4-tuple lookup: the socket whose local end is `src` and remote end is `dst`. */
export interface SockDiag {
  /**
   * The socket, or undefined when the kernel has none with this 4-tuple.
   * Throws when the kernel's answer cannot be had (callers fall back to /proc).
   */
  find(src: { address: string; port: number }, dst: { address: string; port: number }):
    | DiagSocket
    | undefined;
  close(): void;
}

const AF_INET = 2;
const AF_INET6 = 10;
const AF_NETLINK = 16;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 1;
const NLMSG_ERROR = 2;
const MSG_DONTWAIT = 0x40;
const IPPROTO_TCP = 6;
const ENOENT = 2;
/** nlmsghdr (16) + inet_diag_req_v2 (56). */
const REQ_LEN = 72;
/** nlmsghdr (16) + inet_diag_msg (72). */
const MSG_LEN = 88;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
} as const;

function ipv4(address: string): number[] | undefined {
  const m = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/i.exec(address);
  if (!m) return undefined;
  const bytes = m.slice(1).map(Number);
  return bytes.every((b) => b <= 255) ? bytes : undefined;
}

/**
 * Opens the netlink socket. Returns undefined when FFI, libc or netlink are
 * unavailable; the caller then uses /proc (and should self-test with
 * {@linkcode sockDiagWorks} before trusting answers).
 */
export function openSockDiag(): SockDiag | undefined {
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen("libc.so.6", SYMBOLS);
  } catch {
    return undefined;
  }
  const fd = lib.symbols.socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) {
    lib.close();
    return undefined;
  }
  const req = new Uint8Array(REQ_LEN);
  const reqView = new DataView(req.buffer);
  const res = new Uint8Array(8192);
  const resView = new DataView(res.buffer);
  let seq = 0;
  let closed = false;

  return {
    find(src, dst) {
      const s = ipv4(src.address);
      const d = ipv4(dst.address);
      // IPv4 only: the proxies listen on 127.0.0.1. A dual-stack client's
      // v4-mapped socket lives in the same kernel table and is found too.
      if (closed || !s || !d) throw new Error("sock_diag: closed, or not an IPv4 connection");
      seq = (seq + 1) >>> 0;
      req.fill(0);
      reqView.setUint32(0, REQ_LEN, true);
      reqView.setUint16(4, SOCK_DIAG_BY_FAMILY, true);
      reqView.setUint16(6, NLM_F_REQUEST, true);
      reqView.setUint32(8, seq, true);
      req[16] = AF_INET;
      req[17] = IPPROTO_TCP;
      reqView.setUint32(20, 0xffffffff, true); // every state
      reqView.setUint16(24, src.port, false); // ports and addresses in network order
      reqView.setUint16(26, dst.port, false);
      req.set(s, 28);
      req.set(d, 44);
      reqView.setUint32(64, 0xffffffff, true); // INET_DIAG_NOCOOKIE
      reqView.setUint32(68, 0xffffffff, true);
      if (Number(lib.symbols.send(fd, req, BigInt(REQ_LEN), 0)) !== REQ_LEN) {
        throw new Error("sock_diag request not sent");
      }
      // The kernel answers inside send(); anything older is a stale reply: skip it.
      for (let i = 0; i < 8; i++) {
        const n = Number(lib.symbols.recv(fd, res, BigInt(res.length), MSG_DONTWAIT));
        if (n < 16) throw new Error("no sock_diag answer");
        if (resView.getUint32(8, true) !== seq) continue;
        const type = resView.getUint16(4, true);
        if (type === NLMSG_ERROR) {
          if (resView.getInt32(16, true) !== -ENOENT) throw new Error("sock_diag lookup failed");
          return undefined;
        }
        if (type !== SOCK_DIAG_BY_FAMILY || n < MSG_LEN) throw new Error("odd sock_diag answer");
        // The kernel falls back to a listener on the same local port: take
        // only the socket whose 4-tuple is the one asked for.
        // An AF_INET6 socket (v4-mapped) reports 16-byte addresses: the v4 part is last.
        const v6 = res[16] === AF_INET6 ? 12 : 0;
        const same = resView.getUint16(20, false) === src.port &&
          resView.getUint16(22, false) === dst.port &&
          res.subarray(24 + v6, 28 + v6).every((b, j) => b === s[j]) &&
          res.subarray(40 + v6, 44 + v6).every((b, j) => b === d[j]);
        if (!same) return undefined;
        return {
          state: res[17]!,
          uid: resView.getUint32(80, true),
          inode: resView.getUint32(84, true),
        };
      }
      throw new Error("no current sock_diag answer");
    },
    close() {
      if (closed) return;
      closed = true;
      lib.symbols.close(fd);
      lib.close();
    },
  };
}
