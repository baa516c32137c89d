/** gcp-kube-setup's work: read the kubeconfig, patch or revert, show or write. */
import { GateError } from "../shared/errors.ts";
import type { Logger } from "../shared/log.ts";
import { unifiedDiff } from "./diff.ts";
import { MAX_KUBECONFIG_BYTES, patchKubeconfig, revertKubeconfig } from "./kubeconfig.ts";
import { backupOnce, readBackups, writeFileAtomic, writeTarget } from "./safe_write.ts";

/** What to do. */
export interface SetupOptions {
  readonly kubeconfig: string;
  readonly dryRun: boolean;
  readonly revert: boolean;
  /** Absolute path of the gcp-kube-token launcher to install. */
  readonly tokenCommand: string;
}

/** Collaborators of {@linkcode runSetup}. */
export interface SetupDeps {
  readonly log: Logger;
  /** The program's product (the dry-run diff). */
  readonly stdout: (text: string) => void;
}

interface Current {
  readonly bytes: Uint8Array;
  readonly text: string;
  readonly mode: number;
}

function readKubeconfig(path: string, forWrite: boolean): Current {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new GateError(
        "not_found",
        `${path} does not exist; run 'gcloud container clusters get-credentials <cluster>' first, or pass --kubeconfig`,
      );
    }
    throw new GateError("forbidden", `cannot read ${path}: ${(err as Error).message}`);
  }
  if (!info.isFile) {
    throw new GateError("bad_request", `${path} is not a regular file; pass --kubeconfig <file>`);
  }
  if (info.size > MAX_KUBECONFIG_BYTES) {
    throw new GateError("too_large", `${path} is larger than 16 MiB; is it really a kubeconfig?`);
  }
  const mode = (info.mode ?? 0o600) & 0o777;
  // rename() would replace a read-only file without complaint; the owner made
  // it read-only on purpose, so respect that instead.
  if (forWrite && (mode & 0o200) === 0) {
    throw new GateError(
      "forbidden",
      `${path} is read-only (mode ${
        mode.toString(8).padStart(4, "0")
      }); make it writable with 'chmod u+w ${path}' and run again`,
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (err) {
    throw new GateError(
      "forbidden",
      `cannot read ${path} (${
        err instanceof Deno.errors.PermissionDenied ? "permission denied" : (err as Error).message
      }); check its permissions`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new GateError("bad_request", `${path} is not UTF-8 text, so not a kubeconfig`);
  }
  return { bytes, text, mode };
}

function names(list: readonly string[]): string {
  return list.map((n) => JSON.stringify(n)).join(", ");
}

/** Runs gcp-kube-setup; returns the exit code. Errors are thrown as GateError. */
export function runSetup(options: SetupOptions, deps: SetupDeps): number {
  const path = options.kubeconfig;
  const { log } = deps;
  const current = readKubeconfig(path, !options.dryRun);
  let next: string;
  let summary: string;
  if (options.revert) {
    const backups = readBackups(path);
    const r = revertKubeconfig(current.text, backups.map((b) => b.text), path);
    if (r.reverted.length === 0) {
      log.info(`no user in ${path} uses gcp-kube-token; nothing to revert`);
      return 0;
    }
    next = r.text;
    const defaults = r.reverted.filter((n) => !r.fromBackup.includes(n));
    summary = `reverted ${r.reverted.length} user(s) to gke-gcloud-auth-plugin: ${
      names(r.reverted)
    }${
      defaults.length
        ? ` (no backup had ${names(defaults)}: wrote gcloud's default command and hint)`
        : ""
    }`;
  } else {
    const r = patchKubeconfig(current.text, options.tokenCommand, path);
    for (const s of r.skipped) log.warn(`user ${JSON.stringify(s.name)} left alone: ${s.reason}`);
    if (r.patched.length === 0) {
      log.info(
        r.already.length
          ? `nothing to change: ${r.already.length} user(s) in ${path} already use ${options.tokenCommand}`
          : `no user in ${path} runs gke-gcloud-auth-plugin; nothing to change`,
      );
      return 0;
    }
    next = r.text;
    summary = `pointed ${r.patched.length} user(s) at ${options.tokenCommand}: ${names(r.patched)}`;
  }

  if (options.dryRun) {
    deps.stdout(unifiedDiff(current.text, next, { fromName: path, toName: `${path} (new)` }));
    log.info(`dry run: would have ${summary}; ${path} not changed`);
    return 0;
  }
  const data = new TextEncoder().encode(next);
  // Back up first: if that fails, the kubeconfig is never touched.
  const backup = options.revert ? undefined : backupOnce(path, current.bytes, current.mode);
  if (backup?.keptOlder) {
    log.warn(`kept the older backup ${backup.keptOlder}; this version is saved as ${backup.path}`);
  }
  writeFileAtomic(path, data, current.mode);
  const target = writeTarget(path);
  log.info(
    `${summary}; wrote ${target}${target !== path ? ` (target of ${path})` : ""}${
      backup ? `, backup ${backup.path}` : ""
    }`,
  );
  return 0;
}

/**
 * Where the installed gcp-kube-token launcher is: beside this program's
 * launcher (bundled: dist/lib/x.js → dist/bin/; compiled: same directory).
 */
export function tokenCommandPath(moduleUrl: string, execPath: string): string {
  const url = new URL(moduleUrl);
  if (url.protocol === "file:") {
    const p = decodeURIComponent(url.pathname);
    const lib = /^(.*)\/lib\/gcp-kube-setup\.js$/.exec(p);
    if (lib) return `${lib[1]}/bin/gcp-kube-token`;
    const src = /^(.*)\/kube\/setup_main\.ts$/.exec(p);
    if (src) return `${src[1]}/dist/bin/gcp-kube-token`;
  }
  return `${execPath.slice(0, execPath.lastIndexOf("/"))}/gcp-kube-token`;
}
