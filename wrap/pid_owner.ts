/**
 * Decides whether the process that owns the client end of a loopback TCP
 * connection descends from the wrapped command.
 *
 * How: the client's socket (tcp_table.ts: sock_diag by exact 4-tuple, else
 * /proc/net/tcp) gives its owner uid and inode. Another uid is refused at
 * once, with no /proc scan: a flood from another user costs one kernel
 * lookup per connection. For our own uid, the inode appears as
 * `socket:[inode]` among the fds of every process holding it; the wrapped
 * command's descendants are searched (they are who normally calls).
 *
 * Naming a refused caller of our uid means reading every process's fds
 * (~10 ms), so it is a separate call ({@linkcode OwnerCheck.name}) that the
 * caller makes only for the refusals it reports (rate-limited).
 * Callers decide once per connection and keep the verdict for keep-alive.
 */
import {
  type ConnectionKey,
  findInTable,
  procAddresses,
  type SocketFinder,
  type TcpEndpoint,
} from "./tcp_table.ts";

export { type ConnectionKey, procAddresses, type TcpEndpoint };

/** The /proc reads this module makes (a typed fake can stand in for tests). */
export interface ProcDeps {
  /** File text, or undefined when it does not exist or cannot be read (process gone). */
  readTextFile(path: string): string | undefined;
  /** Entry names, or [] when the directory is gone or unreadable. */
  listDir(path: string): string[];
  /** Link target, or undefined when it is gone. */
  readLink(path: string): string | undefined;
}

/** What a verdict is about (callers branch on this, not on `reason`). */
export type VerdictKind = "allowed" | "gone" | "other_user" | "outside_tree" | "not_started";

/** The verdict for one connection. */
export interface OwnerVerdict {
  readonly allowed: boolean;
  /**
   * `gone`: the client closed before the check (no socket, or one no process
   * holds): nobody to refuse, nothing to audit. `other_user`: the socket
   * belongs to another uid. `outside_tree`: our uid, not a descendant.
   */
  readonly kind: VerdictKind;
  /** Owner uid of the client socket, when found. */
  readonly uid: number | undefined;
  /** The process holding the client socket, when found (allowed ones only). */
  readonly pid: number | undefined;
  /** Its command name (from /proc/<pid>/stat), for the audit line. */
  readonly comm: string | undefined;
  /** The client socket's inode, to {@linkcode OwnerCheck.name} a refused caller. */
  readonly inode: string | undefined;
  /** Why, in a few words (no secrets). */
  readonly reason: string;
}

/** Options for {@linkcode createOwnerCheck}. */
export interface OwnerCheckOptions {
  /** The wrapped command's pid: it and its descendants are allowed. */
  readonly rootPid: number;
  /** Our uid: sockets of any other uid are refused without a scan. */
  readonly uid: number;
  /** Defaults to the /proc/net/tcp search under `procRoot`. */
  readonly findSocket?: SocketFinder;
  /** Defaults to `/proc`. */
  readonly procRoot?: string;
}

/** Decides connections for one wrapped command. */
export interface OwnerCheck {
  decide(key: ConnectionKey): OwnerVerdict;
  /** The process holding socket `inode`: a scan of every process's fds (slow; refusals only). */
  name(inode: string): { pid: number; comm: string | undefined } | undefined;
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

/** Where and how /proc is read. */
interface ProcView {
  readonly deps: ProcDeps;
  readonly procRoot: string;
}

function stat(view: ProcView, pid: number): { comm: string; ppid: number } | undefined {
  const text = view.deps.readTextFile(`${view.procRoot}/${pid}/stat`);
  return text ? parseStat(text) : undefined;
}

/** Walks the parent chain; bounded so a malformed /proc cannot loop us. */
function descends(view: ProcView, pid: number, root: number): boolean {
  let p = pid;
  for (let depth = 0; depth < 256 && p > 1; depth++) {
    if (p === root) return true;
    const s = stat(view, p);
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
function descendants(view: ProcView, root: number): number[] {
  const { deps, procRoot } = view;
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
    const s = stat(view, pid);
    if (!s) continue;
    const list = children.get(s.ppid) ?? [];
    list.push(pid);
    children.set(s.ppid, list);
  }
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]!) ?? []));
  return out;
}

function verdict(
  view: ProcView,
  kind: VerdictKind,
  found: { pid?: number; uid?: number; inode?: string; reason: string },
): OwnerVerdict {
  const pid = found.pid;
  return {
    allowed: kind === "allowed",
    kind,
    uid: found.uid,
    pid,
    comm: pid === undefined ? undefined : stat(view, pid)?.comm,
    inode: found.inode,
    reason: found.reason,
  };
}

function gone(uid: number | undefined): OwnerVerdict {
  return {
    allowed: false,
    kind: "gone",
    uid,
    pid: undefined,
    comm: undefined,
    inode: undefined,
    reason: "the connection closed before it could be checked",
  };
}

/** Creates the owner check for the tree rooted at `options.rootPid`. */
export function createOwnerCheck(
  options: OwnerCheckOptions,
  deps: ProcDeps = REAL_PROC,
): OwnerCheck {
  const procRoot = options.procRoot ?? "/proc";
  const view: ProcView = { deps, procRoot };
  const root = options.rootPid;
  const findSocket = options.findSocket ??
    ((key: ConnectionKey) =>
      findInTable(key, {
        readChunks: (path, visit) => {
          const text = deps.readTextFile(path);
          if (text === undefined) return false;
          visit(text);
          return true;
        },
      }, procRoot));
  /** Descendants seen at the last search: most callers are long-lived, check them first. */
  let known: number[] = [root];
  const inTree = (pid: number, target: string): boolean =>
    holdsSocket(pid, target, deps, procRoot) && descends(view, pid, root);
  const ALLOWED = "descends from the wrapped command";

  return {
    decide(key) {
      const sock = findSocket(key);
      if (!sock || sock.inode === "0") return gone(sock?.uid);
      const { inode, uid } = sock;
      // Another user's process can never be in our tree (a setuid descendant
      // would be, but it no longer acts for us): refuse without any scan.
      if (uid !== options.uid) {
        return verdict(view, "other_user", { uid, inode, reason: `another user (uid ${uid})` });
      }
      const target = `socket:[${inode}]`;
      const tried = new Set<number>();
      for (const pid of known) {
        tried.add(pid);
        // A remembered pid may have exited and been reused: re-check its ancestry.
        if (inTree(pid, target)) {
          return verdict(view, "allowed", { pid, uid, inode, reason: ALLOWED });
        }
      }
      known = descendants(view, root);
      for (const pid of known) {
        if (tried.has(pid)) continue;
        // The listing is older than this check: the pid may have exited and
        // been reused by an outsider since. Re-check its ancestry now.
        if (inTree(pid, target)) {
          return verdict(view, "allowed", { pid, uid, inode, reason: ALLOWED });
        }
      }
      // The client may have closed while we searched: between close() taking
      // the fd out of its table and the kernel orphaning the socket, the
      // socket still has its inode but no process holds it. Ask again.
      const again = findSocket(key);
      if (!again || again.inode !== inode) return gone(again?.uid);
      return verdict(view, "outside_tree", {
        uid,
        inode,
        reason: "not a descendant of the wrapped command",
      });
    },
    name(inode) {
      const target = `socket:[${inode}]`;
      for (const pid of numericEntries(deps, procRoot)) {
        if (holdsSocket(pid, target, deps, procRoot)) return { pid, comm: stat(view, pid)?.comm };
      }
      return undefined;
    },
  };
}
