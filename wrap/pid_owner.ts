/**
 * Maps a loopback TCP connection to the process that owns its client end, and
 * decides whether that process descends from the wrapped command.
 *
 * How: the client's socket is the ESTABLISHED row of /proc/net/tcp{,6} whose
 * local end is the client's address and whose remote end is our listening
 * address (matching both ends, so a row of some other connection that happens
 * to share a port never matches). Its inode appears as `socket:[inode]` among
 * the fds of every process holding it.
 *
 * Cost: a full scan of every fd of every process takes ~10 ms, so the
 * wrapped command's descendants are searched first (they are who normally
 * calls), and the full scan runs only to name a denied caller in the audit.
 * Callers decide once per connection and keep the verdict for keep-alive.
 */

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

/** The /proc reads this module makes (a typed fake can stand in for tests). */
export interface ProcDeps {
  /** File text, or undefined when it does not exist or cannot be read (process gone). */
  readTextFile(path: string): string | undefined;
  /** Entry names, or [] when the directory is gone or unreadable. */
  listDir(path: string): string[];
  /** Link target, or undefined when it is gone. */
  readLink(path: string): string | undefined;
}

/** The verdict for one connection. */
export interface OwnerVerdict {
  readonly allowed: boolean;
  /** The process holding the client socket, when found. */
  readonly pid: number | undefined;
  /** Its command name (from /proc/<pid>/stat), for the audit line. */
  readonly comm: string | undefined;
  /** Why, in a few words (no secrets). */
  readonly reason: string;
}

/** Options for {@linkcode createOwnerCheck}. */
export interface OwnerCheckOptions {
  /** The wrapped command's pid: it and its descendants are allowed. */
  readonly rootPid: number;
  /** Defaults to `/proc`. */
  readonly procRoot?: string;
}

/** Decides connections for one wrapped command. */
export interface OwnerCheck {
  decide(key: ConnectionKey): OwnerVerdict;
}

/** Reads /proc with Deno's sync APIs (needs --allow-all). */
export const REAL_PROC: ProcDeps = {
  readTextFile(path) {
    try {
      return Deno.readTextFileSync(path);
    } catch {
      return undefined;
    }
  },
  listDir(path) {
    try {
      return [...Deno.readDirSync(path)].map((e) => e.name);
    } catch {
      return [];
    }
  },
  readLink(path) {
    try {
      return Deno.readLinkSync(path);
    } catch {
      return undefined;
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

const ESTABLISHED = "01";

/**
 * The inode of the client's socket for `key`, from /proc/net/tcp{,6}:
 * ESTABLISHED rows only, both ends of the 4-tuple matched.
 */
export function findClientSocketInode(
  key: ConnectionKey,
  deps: ProcDeps = REAL_PROC,
  procRoot = "/proc",
): string | undefined {
  const client = procAddresses(key.client);
  const server = procAddresses(key.server);
  const tables: [string, string[], string[]][] = [
    ["tcp", client.v4, server.v4],
    ["tcp6", client.v6, server.v6],
  ];
  for (const [table, locals, remotes] of tables) {
    if (locals.length === 0 || remotes.length === 0) continue;
    const text = deps.readTextFile(`${procRoot}/net/${table}`);
    if (!text) continue;
    for (const line of text.split("\n")) {
      // sl local rem st tx:rx tr:when retrnsmt uid timeout inode …
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== ESTABLISHED) continue;
      if (!locals.includes(f[1] ?? "") || !remotes.includes(f[2] ?? "")) continue;
      const inode = f[9];
      // Inode 0 is a socket no process holds any more (orphaned): nobody to allow.
      if (inode && inode !== "0") return inode;
    }
  }
  return undefined;
}

/** Parsed `/proc/<pid>/stat`: the command name and parent pid. */
export function parseStat(text: string): { comm: string; ppid: number } | undefined {
  // comm may contain spaces and parentheses: it ends at the LAST ')'.
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  const rest = text.slice(close + 2).split(" ");
  const ppid = Number(rest[1]);
  return Number.isInteger(ppid) ? { comm: text.slice(open + 1, close), ppid } : undefined;
}

function numericEntries(deps: ProcDeps, dir: string): number[] {
  return deps.listDir(dir).filter((n) => /^\d+$/.test(n)).map(Number);
}

/** True when some fd of `pid` is the socket `inode`. */
function holdsSocket(pid: number, target: string, deps: ProcDeps, procRoot: string): boolean {
  for (const fd of deps.listDir(`${procRoot}/${pid}/fd`)) {
    if (deps.readLink(`${procRoot}/${pid}/fd/${fd}`) === target) return true;
  }
  return false;
}

/** Creates the owner check for the tree rooted at `options.rootPid`. */
export function createOwnerCheck(
  options: OwnerCheckOptions,
  deps: ProcDeps = REAL_PROC,
): OwnerCheck {
  const procRoot = options.procRoot ?? "/proc";
  const root = options.rootPid;
  /** Descendants seen at the last search: most callers are long-lived, check them first. */
  let known: number[] = [root];

  function stat(pid: number): { comm: string; ppid: number } | undefined {
    const text = deps.readTextFile(`${procRoot}/${pid}/stat`);
    return text ? parseStat(text) : undefined;
  }

  /** Walks the parent chain; bounded so a malformed /proc cannot loop us. */
  function descends(pid: number): boolean {
    let p = pid;
    for (let depth = 0; depth < 256 && p > 1; depth++) {
      if (p === root) return true;
      const s = stat(p);
      if (!s) return false;
      p = s.ppid;
    }
    return p === root;
  }

  /**
   * The root's current descendants: from `task/<tid>/children` when the kernel
   * has it (CONFIG_PROC_CHILDREN), else one pass over every `/proc/<pid>/stat`
   * (a small read each, much cheaper than reading every process's fds).
   */
  function descendants(): number[] {
    const tasks = deps.listDir(`${procRoot}/${root}/task`);
    const viaChildren = tasks.length > 0 &&
      deps.readTextFile(`${procRoot}/${root}/task/${tasks[0]}/children`) !== undefined;
    const out: number[] = [root];
    if (viaChildren) {
      for (let i = 0; i < out.length && out.length < 100_000; i++) {
        const pid = out[i]!;
        for (const tid of deps.listDir(`${procRoot}/${pid}/task`)) {
          const text = deps.readTextFile(`${procRoot}/${pid}/task/${tid}/children`) ?? "";
          for (const c of text.split(" ")) if (/^\d+$/.test(c)) out.push(Number(c));
        }
      }
      return out;
    }
    const children = new Map<number, number[]>();
    for (const pid of numericEntries(deps, procRoot)) {
      const s = stat(pid);
      if (!s) continue;
      const list = children.get(s.ppid) ?? [];
      list.push(pid);
      children.set(s.ppid, list);
    }
    for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]!) ?? []));
    return out;
  }

  function verdict(allowed: boolean, pid: number | undefined, reason: string): OwnerVerdict {
    return { allowed, pid, comm: pid === undefined ? undefined : stat(pid)?.comm, reason };
  }

  return {
    decide(key) {
      const inode = findClientSocketInode(key, deps, procRoot);
      if (!inode) return verdict(false, undefined, "no established loopback connection matches");
      const target = `socket:[${inode}]`;
      const tried = new Set<number>();
      for (const pid of known) {
        tried.add(pid);
        // A remembered pid may have exited and been reused: re-check its ancestry.
        if (holdsSocket(pid, target, deps, procRoot) && descends(pid)) {
          return verdict(true, pid, "descends from the wrapped command");
        }
      }
      known = descendants();
      for (const pid of known) {
        if (tried.has(pid)) continue;
        // The listing is older than this check: the pid may have exited and
        // been reused by an outsider since. Re-check its ancestry now.
        if (holdsSocket(pid, target, deps, procRoot) && descends(pid)) {
          return verdict(true, pid, "descends from the wrapped command");
        }
      }
      // Denied. The full scan only names the caller for the audit line.
      for (const pid of numericEntries(deps, procRoot)) {
        if (holdsSocket(pid, target, deps, procRoot)) {
          return verdict(false, pid, "not a descendant of the wrapped command");
        }
      }
      return verdict(false, undefined, "no process holds the client socket");
    },
  };
}
