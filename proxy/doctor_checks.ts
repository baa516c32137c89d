/**
 * `gcp-metadata-proxy doctor`, the checks of the path a token takes: the
 * GCE_METADATA_* variables, the gate socket (owner, mode, protocol), the proxy
 * listening, and a token obtainable. A token is reported by kind, account and
 * lifetime; its value never leaves this file.
 */
import type { Config } from "../shared/config.ts";
import { type CheckResult, fail, pass, warn } from "../shared/doctor_report.ts";
import type { GateClient } from "../shared/gate_client.ts";
import { PROTOCOL_VERSION } from "../shared/protocol.ts";
import type { RawAnswer } from "../shared/raw_http.ts";
import { type PathFacts, socketDirProblem, socketFileProblem } from "../shared/socket_mode.ts";

/** Collaborators of the path checks. */
export interface PathCheckDeps {
  readonly env: (name: string) => string | undefined;
  readonly lstat: (path: string) => PathFacts | undefined;
  readonly uid: () => number | null;
  readonly gate: GateClient;
  /** GET on 127.0.0.1:`port` with the flavor header; rejects when nothing listens. */
  readonly getLocal: (port: number, path: string) => Promise<RawAnswer>;
}

const ENV_FIX = 'eval "$(gcp-metadata-proxy env)"';
const START_FIX =
  "start it: nohup gcp-metadata-proxy >/tmp/gcp-metadata-proxy.log 2>&1 & (a devcontainer's postStartCommand is the usual place)";
const MOUNT_HINT =
  'mount the host\'s socket directory read-only, e.g. "type=bind,source=${localEnv:XDG_RUNTIME_DIR}/gcp-gate,target=/run/gcp-gate,readonly" in devcontainer.json mounts';

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0] ?? "";
}

const VARS = ["GCE_METADATA_HOST", "GCE_METADATA_IP", "GCE_METADATA_ROOT"] as const;

/** GCE_METADATA_HOST/IP/ROOT: all set, identical, no scheme, pointing at this proxy. */
export function checkMetadataEnv(config: Config, deps: Pick<PathCheckDeps, "env">): CheckResult {
  const id = "metadata-env";
  const values = VARS.map((v) => [v, deps.env(v)] as const);
  const unset = values.filter(([, v]) => !v).map(([k]) => k);
  if (unset.length === VARS.length) {
    return fail(
      id,
      "GCE_METADATA_HOST, GCE_METADATA_IP and GCE_METADATA_ROOT are unset: clients look for a metadata server at 169.254.169.254, not at the proxy",
      ENV_FIX,
    );
  }
  if (unset.length) {
    return fail(
      id,
      `${
        unset.join(", ")
      } unset: Python pings GCE_METADATA_IP, gcloud reads GCE_METADATA_ROOT, Go reads GCE_METADATA_HOST; each needs all three`,
      ENV_FIX,
    );
  }
  const withScheme = values.filter(([, v]) => /^[a-z]+:\/\//i.test(v!)).map(([k]) => k);
  if (withScheme.length) {
    return fail(id, `${withScheme.join(", ")} carry a scheme (Go clients break on it)`, ENV_FIX);
  }
  const distinct = new Set(values.map(([, v]) => v));
  if (distinct.size > 1) {
    return fail(
      id,
      `they disagree (${
        values.map(([k, v]) => `${k}=${v}`).join(", ")
      }): clients would use different servers`,
      ENV_FIX,
    );
  }
  const value = values[0]![1]!;
  const expected = `127.0.0.1:${config.port}`;
  if (config.port !== 0 && value !== expected) {
    return warn(
      id,
      `all three are ${value}, but this proxy is configured for ${expected}`,
      `${ENV_FIX}, or run the doctor with the proxy's --port`,
    );
  }
  return pass(id, `GCE_METADATA_HOST, _IP and _ROOT all ${value}`);
}

/** An HTTP(S) proxy in the environment must not see requests to the metadata proxy. */
export function checkNoProxy(deps: Pick<PathCheckDeps, "env">): CheckResult {
  const id = "no-proxy";
  const proxy = deps.env("HTTP_PROXY") || deps.env("http_proxy");
  if (!proxy) return pass(id, "no HTTP proxy set");
  const noProxy = `${deps.env("NO_PROXY") ?? ""},${deps.env("no_proxy") ?? ""}`.split(",")
    .map((s) => s.trim());
  if (noProxy.includes("127.0.0.1")) return pass(id, "HTTP proxy set; NO_PROXY exempts 127.0.0.1");
  return warn(
    id,
    "HTTP_PROXY is set and NO_PROXY does not name 127.0.0.1: Node clients would send metadata requests, tokens included, through that proxy",
    'export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"',
  );
}

/** The gate socket and its directory as seen from here: present, private, ours. */
export function checkGateSocket(config: Config, deps: PathCheckDeps): CheckResult {
  const id = "gate-socket";
  const path = config.socket_path;
  const dir = dirname(path);
  const dirFacts = deps.lstat(dir);
  const sock = deps.lstat(path);
  if (!dirFacts || !sock) {
    return fail(
      id,
      `no gate socket at ${path}: gcp-gate is not running on the host, or its socket directory is not mounted here`,
      `on the host: gcp-gate doctor; then ${MOUNT_HINT}`,
    );
  }
  const uid = deps.uid();
  const problem = socketDirProblem(dir, dirFacts, uid) ?? socketFileProblem(path, sock, uid);
  if (problem) return fail(id, problem.problem, `on the host: ${problem.fix}`);
  return pass(id, `${path}: a socket private to uid ${uid ?? "?"} in a private directory`);
}

/** The gate answers and speaks our protocol version. */
export async function checkGateProtocol(deps: PathCheckDeps): Promise<CheckResult> {
  const id = "gate-protocol";
  try {
    const h = await deps.gate.health();
    if (h.protocol !== PROTOCOL_VERSION) {
      return fail(
        id,
        `the gate speaks protocol ${h.protocol}, this proxy ${PROTOCOL_VERSION}`,
        "install the same gcp-gate release on the host and in the container",
      );
    }
    return pass(id, `gcp-gate ${h.version} answers, protocol ${h.protocol}`);
  } catch (err) {
    return fail(id, firstLine(err), "on the host: gcp-gate doctor");
  }
}

/** Whether the proxy answers on its port like a metadata server. */
export async function checkListening(config: Config, deps: PathCheckDeps): Promise<CheckResult> {
  const id = "proxy-listening";
  if (config.port === 0) {
    return warn(
      id,
      "port = 0: doctor cannot know where the proxy listens",
      "gcp-metadata-proxy doctor --port <its port>",
    );
  }
  let res: RawAnswer;
  try {
    res = await deps.getLocal(config.port, "/computeMetadata/v1/");
  } catch (err) {
    return fail(id, `nothing answers on 127.0.0.1:${config.port} (${firstLine(err)})`, START_FIX);
  }
  if (res.headers["metadata-flavor"] !== "Google") {
    return fail(
      id,
      `127.0.0.1:${config.port} answers ${res.status}, but not as a metadata server: another program holds the port`,
      "stop that program, or run the proxy and clients on another port (--port, then eval its env)",
    );
  }
  return pass(id, `the proxy answers on 127.0.0.1:${config.port}`);
}

function minutes(seconds: number): string {
  return `${Math.max(0, Math.round(seconds / 60))} min`;
}

/** A token obtainable: through the proxy when it listens, else from the gate directly. */
export async function checkToken(
  config: Config,
  deps: PathCheckDeps,
  proxyUp: boolean,
): Promise<CheckResult> {
  const id = "token";
  if (proxyUp) {
    try {
      const res = await deps.getLocal(
        config.port,
        "/computeMetadata/v1/instance/service-accounts/default/token",
      );
      if (res.status !== 200) {
        const why = res.body.slice(0, 300).split("\n")[0] ?? "";
        return fail(id, `the proxy answered ${res.status}: ${why}`, "on the host: gcp-gate doctor");
      }
      const j = JSON.parse(res.body) as { expires_in?: unknown; token_type?: unknown };
      const email = await deps.getLocal(
        config.port,
        "/computeMetadata/v1/instance/service-accounts/default/email",
      ).then((r) => r.status === 200 ? r.body.trim().slice(0, 200) : undefined, () => undefined);
      return pass(
        id,
        `an access token (${String(j.token_type ?? "?").slice(0, 20)})${
          email ? ` of ${email}` : ""
        } through the proxy, valid ${minutes(Number(j.expires_in))}`,
      );
    } catch (err) {
      return fail(
        id,
        `the proxy's token answer: ${firstLine(err)}`,
        "on the host: gcp-gate doctor",
      );
    }
  }
  try {
    const t = await deps.gate.token();
    return warn(
      id,
      `the gate hands out an access token (${t.token_type}) valid ${
        minutes(t.expires_in)
      }, but the proxy is not listening`,
      START_FIX,
    );
  } catch (err) {
    return fail(id, `no token: ${firstLine(err)}`, "on the host: gcp-gate doctor");
  }
}
