/**
 * Owner and mode checks on the gate's socket and its directory, as both
 * `doctor` commands report them. A small local helper: the container-side
 * socket trust checks (shared/socket_trust.ts, another branch) cover the same
 * ground and may absorb it when the branches meet.
 */

import { shellArg } from "./doctor_report.ts";

/** What `lstat` said about a path (undefined fields: unknown on this OS). */
export interface PathFacts {
  readonly isSymlink: boolean;
  readonly isSocket: boolean;
  readonly isDirectory: boolean;
  readonly uid: number | null;
  readonly mode: number | null;
}

/** `lstat` of `path`, or undefined when nothing is there. Other errors propagate. */
export function lstatFacts(path: string): PathFacts | undefined {
  let st: Deno.FileInfo;
  try {
    st = Deno.lstatSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  return {
    isSymlink: st.isSymlink,
    isSocket: st.isSocket === true,
    isDirectory: st.isDirectory,
    uid: st.uid,
    mode: st.mode === null ? null : st.mode & 0o7777,
  };
}

/** One thing wrong with a path, and the shell command that fixes it. */
export interface PathProblem {
  readonly problem: string;
  readonly fix: string;
}

function octal(mode: number): string {
  return (mode & 0o777).toString(8).padStart(3, "0");
}

/**
 * Why the socket directory `dir` is not private to `uid`, or undefined when it
 * is. A directory others can enter lets them connect to the socket; one others
 * can write lets them swap the socket for a relay of their own.
 */
export function socketDirProblem(
  dir: string,
  facts: PathFacts,
  uid: number | null,
): PathProblem | undefined {
  if (facts.isSymlink) {
    return {
      problem: `${dir} is a symlink`,
      fix: `rm ${shellArg(dir)} (the gate creates the directory)`,
    };
  }
  if (!facts.isDirectory) {
    return {
      problem: `${dir} is not a directory`,
      fix: `mv ${shellArg(dir)} ${shellArg(`${dir}.old`)}`,
    };
  }
  if (uid !== null && facts.uid !== null && facts.uid !== uid) {
    return {
      problem: `${dir} belongs to uid ${facts.uid}, not to you (uid ${uid})`,
      fix: `choose a socket_path in a directory you own`,
    };
  }
  if (facts.mode !== null && (facts.mode & 0o077) !== 0) {
    return {
      problem: `${dir} has mode ${octal(facts.mode)}: other users can reach the socket`,
      fix: `chmod 700 ${shellArg(dir)}`,
    };
  }
  return undefined;
}

/** Why the socket at `path` is not a private socket of `uid`, or undefined when it is. */
export function socketFileProblem(
  path: string,
  facts: PathFacts,
  uid: number | null,
): PathProblem | undefined {
  if (facts.isSymlink) {
    return { problem: `${path} is a symlink, not the gate's socket`, fix: `rm ${shellArg(path)}` };
  }
  if (!facts.isSocket) {
    return {
      problem: `${path} is not a socket`,
      fix: `mv ${shellArg(path)} ${shellArg(`${path}.old`)}`,
    };
  }
  if (uid !== null && facts.uid !== null && facts.uid !== uid) {
    return {
      problem: `${path} belongs to uid ${facts.uid}, not to you (uid ${uid})`,
      fix: `run as the user who owns it, or restart gcp-gate as yourself`,
    };
  }
  if (facts.mode !== null && (facts.mode & 0o077) !== 0) {
    return {
      problem: `${path} has mode ${octal(facts.mode)}: other users can ask it for tokens`,
      fix: `chmod 600 ${shellArg(path)}`,
    };
  }
  return undefined;
}
