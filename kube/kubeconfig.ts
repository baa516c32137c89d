/**
 * Patching and reverting kubeconfig users of gke-gcloud-auth-plugin.
 *
 * `npm:yaml`'s Document API finds the nodes and their source ranges; the edit
 * itself is a splice of the original text, so every byte outside the touched
 * scalars (other users, comments, key order, quoting, line folding) stays
 * exactly as it was. Re-serialising the document would reformat the file.
 */
import { isAlias, isMap, isScalar, isSeq, type Node, parseDocument, type YAMLMap } from "yaml";
import { GateError } from "../shared/errors.ts";

export const GKE_PLUGIN = "gke-gcloud-auth-plugin";
export const TOKEN_PLUGIN = "gcp-kube-token";
/** What kubectl shows when the command is missing; says how to undo. */
export const INSTALL_HINT =
  "gcp-kube-token (set by gcp-kube-setup) is missing: reinstall gcp-gate, or run 'gcp-kube-setup --revert' to go back to gke-gcloud-auth-plugin";
/** gcloud's own hint, used by a revert that has no backup to copy from. */
export const GCLOUD_INSTALL_HINT =
  "Install gke-gcloud-auth-plugin for use with kubectl by following https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin";

/** The last path segment (either separator: gcloud on Windows writes `\`). */
function basename(p: string): string {
  return p.slice(Math.max(p.lastIndexOf("/"), p.lastIndexOf("\\")) + 1);
}

export function isGkePlugin(command: string): boolean {
  const b = basename(command);
  return b === GKE_PLUGIN || b === `${GKE_PLUGIN}.exe`;
}

export function isTokenPlugin(command: string): boolean {
  return basename(command) === TOKEN_PLUGIN;
}

/** A YAML scalar for `s`: plain when unambiguous, else double-quoted (JSON is valid YAML). */
export function yamlScalar(s: string): string {
  const plain = /^[A-Za-z0-9_./~@+-][A-Za-z0-9_./~@+=-]*$/.test(s) &&
    !/^(true|false|null|yes|no|on|off|~|[-+]?[0-9.]+)$/i.test(s);
  return plain ? s : JSON.stringify(s);
}

type Range = readonly [number, number];

/** One kubeconfig user with an exec plugin, located in the source text. */
export interface ExecUser {
  readonly name: string;
  readonly command: string;
  readonly commandRange: Range;
  /** Source text range of installHint's value, when present. */
  readonly hintRange: Range | undefined;
  /** Start of the installHint key (for removing the pair). */
  readonly hintKeyStart: number | undefined;
  /** Column of the exec mapping's keys (block style), undefined for flow style. */
  readonly indent: number | undefined;
  /** True when exec.args is a non-empty list (gcp-kube-token takes no arguments). */
  readonly hasArgs: boolean;
}

function range(node: Node): Range | undefined {
  return node.range ? [node.range[0], node.range[1]] : undefined;
}

function scalarString(node: unknown): string | undefined {
  return isScalar(node) && typeof node.value === "string" ? node.value : undefined;
}

function lineStart(text: string, at: number): number {
  return text.lastIndexOf("\n", at - 1) + 1;
}

function lineEnd(text: string, at: number): number {
  const i = text.indexOf("\n", at);
  return i < 0 ? text.length : i;
}

/** Largest kubeconfig we read: real ones are kilobytes. */
export const MAX_KUBECONFIG_BYTES = 16 * 1024 * 1024;

/**
 * Parses `text` and returns every user with an exec plugin. Throws a
 * GateError `bad_request` naming `where` when the text is not a kubeconfig.
 */
export function findExecUsers(text: string, where: string): ExecUser[] {
  const doc = parseDocument(text, { keepSourceTokens: false, uniqueKeys: false });
  const first = doc.errors[0];
  if (first) {
    const pos = first.linePos?.[0];
    const at = pos ? ` (line ${pos.line}, column ${pos.col})` : "";
    throw new GateError(
      "bad_request",
      `${where} is not valid YAML${at}: ${
        (first.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "")
      }; fix it or restore it from a backup`,
    );
  }
  const root = doc.contents;
  const notKube = (why: string): GateError =>
    new GateError(
      "bad_request",
      `${where} is not a kubeconfig (${why}); pass --kubeconfig with the file kubectl uses`,
    );
  if (!isMap(root)) throw notKube("its top level is not a mapping");
  const kindNode: unknown = root.get("kind", true);
  const kind: unknown = isScalar(kindNode) ? kindNode.value : kindNode;
  if (kind !== undefined && kind !== null && kind !== "Config") {
    throw notKube(`kind is ${JSON.stringify(String(kind))}, not Config`);
  }
  if (!["clusters", "contexts", "users"].some((k) => root.has(k)) && kind !== "Config") {
    throw notKube("no clusters, contexts or users");
  }
  const users = root.get("users", true);
  if (users === undefined || users === null || (isScalar(users) && users.value === null)) return [];
  if (!isSeq(users)) throw notKube("users is not a list");
  const out: ExecUser[] = [];
  const seen = new Set<unknown>();
  for (const item of users.items) {
    if (!isMap(item)) throw notKube("a users entry is not a mapping");
    const name = String(item.get("name") ?? "");
    let user = item.get("user", true) as unknown;
    if (isAlias(user)) user = user.resolve(doc);
    if (!isMap(user)) continue;
    let exec = (user as YAMLMap).get("exec", true) as unknown;
    // An anchored exec shared by several users is edited once, at its anchor.
    if (isAlias(exec)) exec = exec.resolve(doc);
    if (!isMap(exec) || seen.has(exec)) continue;
    seen.add(exec);
    const commandNode = exec.get("command", true);
    const command = scalarString(commandNode);
    const commandRange = isScalar(commandNode) ? range(commandNode) : undefined;
    if (command === undefined || commandRange === undefined) continue;
    const hintPair = exec.items.find((p) => isScalar(p.key) && p.key.value === "installHint");
    const hintNode = hintPair?.value;
    const hintRange = isScalar(hintNode) ? range(hintNode) : undefined;
    const hintKeyStart = isScalar(hintPair?.key) ? hintPair.key.range?.[0] : undefined;
    const commandPair = exec.items.find((p) => isScalar(p.key) && p.key.value === "command");
    const keyStart = isScalar(commandPair?.key) ? commandPair.key.range?.[0] : undefined;
    const indent = exec.flow || keyStart === undefined
      ? undefined
      : keyStart - lineStart(text, keyStart);
    const args = exec.get("args", true);
    const hasArgs = isSeq(args) ? args.items.length > 0 : isScalar(args) && args.value !== null;
    out.push({ name, command, commandRange, hintRange, hintKeyStart, indent, hasArgs });
  }
  return out;
}

interface Edit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

function applyEdits(text: string, edits: readonly Edit[]): string {
  let out = text;
  for (const e of [...edits].sort((a, b) => b.start - a.start)) {
    out = out.slice(0, e.start) + e.text + out.slice(e.end);
  }
  return out;
}

function hintEdits(text: string, u: ExecUser, hintSource: string): Edit[] {
  if (u.hintRange) return [{ start: u.hintRange[0], end: u.hintRange[1], text: hintSource }];
  if (u.indent === undefined) {
    return [{
      start: u.commandRange[1],
      end: u.commandRange[1],
      text: `, installHint: ${hintSource}`,
    }];
  }
  // Block style: a new line after the command's line, at the same indent.
  const at = lineEnd(text, u.commandRange[1]);
  return [{ start: at, end: at, text: `\n${" ".repeat(u.indent)}installHint: ${hintSource}` }];
}

/** Result of {@linkcode patchKubeconfig}. */
export interface PatchResult {
  readonly text: string;
  /** Users now pointed at gcp-kube-token. */
  readonly patched: readonly string[];
  /** Users that already pointed at this gcp-kube-token. */
  readonly already: readonly string[];
  /** Users left alone, with the reason. */
  readonly skipped: readonly { readonly name: string; readonly reason: string }[];
}

/**
 * Points every gke-gcloud-auth-plugin user (and any gcp-kube-token user with
 * a stale path) at `tokenCommand`, touching only `command` and `installHint`:
 * apiVersion, provideClusterInfo, interactiveMode and everything else stay.
 */
export function patchKubeconfig(text: string, tokenCommand: string, where: string): PatchResult {
  const users = findExecUsers(text, where);
  const edits: Edit[] = [];
  const patched: string[] = [];
  const already: string[] = [];
  const skipped: { name: string; reason: string }[] = [];
  const hint = JSON.stringify(INSTALL_HINT);
  for (const u of users) {
    const gke = isGkePlugin(u.command);
    if (!gke && !isTokenPlugin(u.command)) continue;
    if (u.command === tokenCommand) {
      already.push(u.name);
      continue;
    }
    if (u.hasArgs) {
      skipped.push({
        name: u.name,
        reason:
          "its exec passes args, which gcp-kube-token does not take; remove them and run again",
      });
      continue;
    }
    edits.push({
      start: u.commandRange[0],
      end: u.commandRange[1],
      text: yamlScalar(tokenCommand),
    });
    if (gke) edits.push(...hintEdits(text, u, hint));
    patched.push(u.name);
  }
  const out = applyEdits(text, edits);
  // Belt and braces: the spliced text must parse and say what we meant.
  const check = findExecUsers(out, where);
  for (const name of patched) {
    if (!check.some((u) => u.name === name && u.command === tokenCommand)) {
      throw new GateError(
        "internal",
        `patching user ${
          JSON.stringify(name)
        } in ${where} produced an unexpected result; nothing was written`,
      );
    }
  }
  return { text: out, patched, already, skipped };
}

/** Result of {@linkcode revertKubeconfig}. */
export interface RevertResult {
  readonly text: string;
  readonly reverted: readonly string[];
  /** Users restored from a backup's exact text (the rest got gcloud's defaults). */
  readonly fromBackup: readonly string[];
}

interface Original {
  readonly commandSource: string;
  /** undefined: the original had no installHint. */
  readonly hintSource: string | undefined;
}

function originalFrom(backups: readonly string[], name: string): Original | undefined {
  for (const b of backups) {
    let users: ExecUser[];
    try {
      users = findExecUsers(b, "backup");
    } catch {
      continue; // an unreadable backup is just not a source
    }
    const u = users.find((x) => x.name === name && isGkePlugin(x.command));
    if (!u) continue;
    return {
      commandSource: b.slice(u.commandRange[0], u.commandRange[1]),
      hintSource: u.hintRange ? b.slice(u.hintRange[0], u.hintRange[1]) : undefined,
    };
  }
  return undefined;
}

const DEFAULT_ORIGINAL: Original = {
  commandSource: GKE_PLUGIN,
  hintSource: JSON.stringify(GCLOUD_INSTALL_HINT),
};

function revertEdits(text: string, u: ExecUser, orig: Original): Edit[] {
  const edits: Edit[] = [{
    start: u.commandRange[0],
    end: u.commandRange[1],
    text: orig.commandSource,
  }];
  if (orig.hintSource !== undefined) {
    edits.push(...hintEdits(text, u, orig.hintSource));
  } else if (u.hintRange && u.hintKeyStart !== undefined) {
    // The original had no hint, so we added it: take it out again, with the
    // newline (block style) or the ", " (flow style) we put before it.
    const start = u.indent === undefined
      ? text.lastIndexOf(",", u.hintKeyStart)
      : lineStart(text, u.hintKeyStart) - 1;
    const end = u.indent === undefined ? u.hintRange[1] : lineEnd(text, u.hintRange[1]);
    if (start >= 0) edits.push({ start, end, text: "" });
  }
  return edits;
}

/**
 * Points gcp-kube-token users back at gke-gcloud-auth-plugin. Command and
 * hint are copied byte for byte from the newest backup that has the user
 * (`backups`, newest first); without one, gcloud's defaults are written.
 */
export function revertKubeconfig(
  text: string,
  backups: readonly string[],
  where: string,
): RevertResult {
  const users = findExecUsers(text, where).filter((u) => isTokenPlugin(u.command));
  const plan = users.map((u) => ({ u, orig: originalFrom(backups, u.name) }));
  const build = (useBackups: boolean): string =>
    applyEdits(
      text,
      plan.flatMap(({ u, orig }) =>
        revertEdits(text, u, (useBackups ? orig : undefined) ?? DEFAULT_ORIGINAL)
      ),
    );
  const ok = (out: string): boolean => {
    try {
      const check = findExecUsers(out, where);
      return users.every((u) => check.some((c) => c.name === u.name && isGkePlugin(c.command)));
    } catch {
      return false;
    }
  };
  let out = build(true);
  let fromBackup = plan.filter((p) => p.orig !== undefined).map((p) => p.u.name);
  if (!ok(out)) {
    // A backup's text did not fit the current layout: fall back to defaults.
    out = build(false);
    fromBackup = [];
    if (!ok(out)) {
      throw new GateError(
        "internal",
        `reverting ${where} produced an unexpected result; nothing was written`,
      );
    }
  }
  return { text: out, reverted: users.map((u) => u.name), fromBackup };
}
