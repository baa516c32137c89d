/**
 * `gcp-gate doctor`, the checks on this machine: socket directory and socket
 * owner/mode, a gate already answering, the admin socket kept apart, approval
 * methods usable now, and the service unit. Read-only: nothing is created,
 * chmod-ed or started.
 */
import type { Config } from "../shared/config.ts";
import { type CheckResult, fail, pass, shellArg, warn } from "../shared/doctor_report.ts";
import type { HealthResponse } from "../shared/protocol.ts";
import { type PathFacts, socketDirProblem, socketFileProblem } from "../shared/socket_mode.ts";
import { sharesMountedDir } from "./admin_server.ts";
import { serviceFilePath } from "./install_service.ts";

/** Collaborators of the local checks. */
export interface LocalCheckDeps {
  readonly lstat: (path: string) => PathFacts | undefined;
  readonly uid: () => number | null;
  /** The gate's /health on `path`, or undefined when nothing answers. */
  readonly health: (path: string) => Promise<HealthResponse | undefined>;
  readonly env: (name: string) => string | undefined;
  readonly os: string;
  /** Whether this process has a terminal on stdin and stderr. */
  readonly isTerminal: () => boolean;
  readonly readTextFile: (path: string) => string | undefined;
  readonly version: string;
}

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

function startFix(os: string): string {
  return os === "darwin"
    ? "launchctl kickstart gui/$(id -u)/dev.gcp-gate.gate (or run gcp-gate in a terminal)"
    : os === "linux"
    ? "systemctl --user start gcp-gate (or run gcp-gate in a terminal)"
    : "run gcp-gate";
}

/** Checks one private directory + socket pair (the gate's or the admin's). */
function checkSocketPair(
  id: string,
  socketPath: string,
  deps: LocalCheckDeps,
): CheckResult {
  const dir = dirname(socketPath);
  const dirFacts = deps.lstat(dir);
  if (!dirFacts) {
    return pass(id, `${dir} does not exist yet; the gate creates it 0700 at start`);
  }
  const uid = deps.uid();
  const dirProblem = socketDirProblem(dir, dirFacts, uid);
  if (dirProblem) return fail(id, dirProblem.problem, dirProblem.fix);
  const sock = deps.lstat(socketPath);
  if (!sock) return pass(id, `${dir} is private (0700, yours); no socket yet`);
  const sockProblem = socketFileProblem(socketPath, sock, uid);
  if (sockProblem) return fail(id, sockProblem.problem, sockProblem.fix);
  return pass(id, `${socketPath} and its directory are private to you`);
}

/** The local checks, in report order. */
export function localChecks(
  config: Config,
  deps: LocalCheckDeps,
): { id: string; run: () => Promise<CheckResult> }[] {
  let live: HealthResponse | undefined;
  return [
    {
      id: "gate-socket",
      run: () => Promise.resolve(checkSocketPair("gate-socket", config.socket_path, deps)),
    },
    {
      id: "gate-running",
      run: async () => {
        const facts = deps.lstat(config.socket_path);
        live = facts?.isSocket ? await deps.health(config.socket_path) : undefined;
        if (live) {
          const where =
            `a gate answers on ${config.socket_path} (version ${live.version}, protocol ${live.protocol}, up ${
              Math.round(live.uptime_seconds / 60)
            } min); starting another with this socket_path would be refused`;
          if (live.version !== deps.version) {
            return warn(
              "gate-running",
              `${where}; it is not this version (${deps.version})`,
              `restart it to run this version: ${
                startFix(deps.os).replace(" start ", " restart ")
              }`,
            );
          }
          return pass("gate-running", where);
        }
        return warn(
          "gate-running",
          facts?.isSocket
            ? `${config.socket_path} is left over from a gate that exited (nothing answers); the next start replaces it`
            : `no gate is running (no socket at ${config.socket_path})`,
          startFix(deps.os),
        );
      },
    },
    {
      id: "admin-socket",
      run: () => {
        if (sharesMountedDir(config.admin_socket_path, config.socket_path)) {
          return Promise.resolve(fail(
            "admin-socket",
            `admin socket ${config.admin_socket_path} shares a directory tree with the gate socket, which containers mount: a container could approve its own prod request`,
            `set admin_socket_path to a directory outside ${dirname(config.socket_path)} in ${
              config.config_path ?? "your config"
            }`,
          ));
        }
        const r = checkSocketPair("admin-socket", config.admin_socket_path, deps);
        return Promise.resolve(
          r.status === "PASS"
            ? pass("admin-socket", `separate from the gate socket; ${r.message}`)
            : r,
        );
      },
    },
    { id: "approval", run: () => Promise.resolve(checkApproval(config, deps)) },
    { id: "service", run: () => Promise.resolve(checkService(config, deps, live !== undefined)) },
  ];
}

/** Whether each configured approval method could ask a human right now. */
export function checkApproval(config: Config, deps: LocalCheckDeps): CheckResult {
  const ok: string[] = [];
  const missing: { what: string; fix: string }[] = [];
  for (const m of config.approval_methods) {
    if (m === "queue") {
      ok.push("queue (gcp-gate pending / approve)");
    } else if (m === "terminal") {
      if (deps.isTerminal()) ok.push("terminal (when the gate runs in this terminal)");
      else {
        missing.push({
          what: "terminal: no TTY here",
          fix: "run gcp-gate in the foreground of a terminal",
        });
      }
    } else if (deps.os === "darwin") {
      if (deps.lstat(config.osascript_path)) ok.push(`dialog (${config.osascript_path})`);
      else {missing.push({
          what: `dialog: ${config.osascript_path} not found`,
          fix: "set osascript_path",
        });}
    } else if (deps.os !== "linux") {
      missing.push({ what: `dialog: none on ${deps.os}`, fix: 'use approval_methods = "queue"' });
    } else if (!deps.lstat(config.zenity_path)) {
      missing.push({
        what: `dialog: ${config.zenity_path} not found`,
        fix: "sudo apt-get install zenity (or set zenity_path)",
      });
    } else if (!deps.env("DISPLAY") && !deps.env("WAYLAND_DISPLAY")) {
      missing.push({
        what: "dialog: no display (DISPLAY and WAYLAND_DISPLAY unset)",
        fix:
          "start the gate inside your desktop session (for the service: systemctl --user import-environment DISPLAY WAYLAND_DISPLAY && systemctl --user restart gcp-gate)",
      });
    } else {
      ok.push(
        `dialog (${config.zenity_path} on ${deps.env("WAYLAND_DISPLAY") ? "Wayland" : "X11"})`,
      );
    }
  }
  const off = (["dialog", "terminal", "queue"] as const).filter((m) =>
    !config.approval_methods.includes(m)
  );
  const offNote = off.length ? ` (not enabled: ${off.join(", ")})` : "";
  if (missing.length === 0) return pass("approval", `available now: ${ok.join(", ")}${offNote}`);
  const unavailable = missing.map((m) => m.what).join("; ");
  if (ok.length === 0) {
    return fail(
      "approval",
      `no approval method can ask you now — ${unavailable}${offNote}: every prod request is refused`,
      off.includes("queue")
        ? `add the queue: approval_methods = "${
          [...config.approval_methods, "queue"].join(",")
        }" in ${config.config_path ?? "your config"}, then decide with gcp-gate pending / approve`
        : missing[0]!.fix,
    );
  }
  return warn(
    "approval",
    `available now: ${ok.join(", ")}; not available: ${unavailable}`,
    missing[0]!.fix,
  );
}

/**
 * Whether the service unit (systemd user unit / launchd agent) is installed,
 * and whether a gate runs. Running is judged by the socket answering, not by
 * asking systemctl/launchctl: that would need permission to run programs (and
 * D-Bus access) the gate otherwise never has, and the live socket is what the
 * containers depend on anyway.
 */
export function checkService(config: Config, deps: LocalCheckDeps, running: boolean): CheckResult {
  if (deps.os !== "linux" && deps.os !== "darwin") {
    return pass("service", `no service manager support on ${deps.os}; start gcp-gate yourself`);
  }
  let path: string;
  try {
    path = serviceFilePath(deps.os, deps.env);
  } catch (err) {
    return warn("service", (err as Error).message, "set HOME and re-run gcp-gate doctor");
  }
  const text = deps.readTextFile(path);
  if (text === undefined) {
    return warn(
      "service",
      `not installed (no ${path}): the gate runs only while you start it`,
      "gcp-gate install-service",
    );
  }
  if (config.config_file && !text.includes(config.config_file)) {
    return warn(
      "service",
      `${path} does not use this config (${config.config_file})`,
      `gcp-gate install-service --yes --config ${shellArg(config.config_file)}`,
    );
  }
  if (!running) {
    return warn(
      "service",
      `installed at ${path}, but no gate answers on ${config.socket_path}`,
      deps.os === "darwin"
        ? `launchctl bootstrap gui/$(id -u) ${shellArg(path)}`
        : "systemctl --user daemon-reload && systemctl --user enable --now gcp-gate",
    );
  }
  return pass("service", `installed at ${path}; a gate answers on the socket`);
}
