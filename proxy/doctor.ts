/**
 * `gcp-metadata-proxy doctor [--json]`: read-only checks from inside the
 * container, each PASS, WARN or FAIL with one line and the command that fixes
 * it. Exit 0 when all pass, 1 on any FAIL, 3 when only WARNs.
 *
 * Its extra permissions (HOME, gcloud's dir, the probe hosts, a few variable
 * names, the uid) are granted by the launcher to this subcommand only; the
 * long-running proxy never holds them (scripts/build.ts, scripts/resolve.ts).
 */
import { printOut, readEnv } from "../shared/cli.ts";
import type { Config } from "../shared/config.ts";
import {
  type CheckResult,
  doctorExitCode,
  renderJson,
  renderText,
  runChecks,
} from "../shared/doctor_report.ts";
import { GateError } from "../shared/errors.ts";
import { createGateClient } from "../shared/gate_client.ts";
import { rawGet } from "../shared/raw_http.ts";
import { lstatFacts } from "../shared/socket_mode.ts";
import { versionString } from "../shared/version.ts";
import {
  type BypassDeps,
  checkCredentialEnv,
  checkGcloudFiles,
  checkKeyFiles,
  checkOtherMetadataServers,
} from "./doctor_bypass.ts";
import {
  checkGateProtocol,
  checkGateSocket,
  checkListening,
  checkMetadataEnv,
  checkNoProxy,
  checkToken,
  type PathCheckDeps,
} from "./doctor_checks.ts";
import { parseProbeHosts } from "./doctor_scopes.ts";

/** Everything the proxy doctor touches. */
export type ProxyDoctorDeps = PathCheckDeps & BypassDeps;

/** Runs every container-side check for `config`, in report order. */
export async function runProxyDoctor(
  config: Config,
  deps: ProxyDoctorDeps,
): Promise<CheckResult[]> {
  const hosts = parseProbeHosts(config.doctor_metadata_probe_hosts);
  let proxyUp = false;
  return await runChecks([
    { id: "metadata-env", run: () => Promise.resolve(checkMetadataEnv(config, deps)) },
    { id: "no-proxy", run: () => Promise.resolve(checkNoProxy(deps)) },
    { id: "gate-socket", run: () => Promise.resolve(checkGateSocket(config, deps)) },
    { id: "gate-protocol", run: () => checkGateProtocol(deps) },
    {
      id: "proxy-listening",
      run: async () => {
        const r = await checkListening(config, deps);
        proxyUp = r.status === "PASS";
        return r;
      },
    },
    { id: "token", run: () => checkToken(config, deps, proxyUp) },
    { id: "metadata-bypass", run: () => checkOtherMetadataServers(hosts, deps) },
    { id: "credential-env", run: () => Promise.resolve(checkCredentialEnv(deps)) },
    { id: "adc-file", run: () => Promise.resolve(checkGcloudFiles(deps)) },
    { id: "key-files", run: () => Promise.resolve(checkKeyFiles(deps)) },
  ]);
}

function readSmallFile(path: string, maxBytes: number): string | undefined {
  let file: Deno.FsFile | undefined;
  try {
    // lstat first: never open a FIFO or device that could block the doctor.
    const st = Deno.lstatSync(path);
    if (!st.isFile || st.size > maxBytes) return undefined;
    file = Deno.openSync(path, { read: true });
    const buf = new Uint8Array(maxBytes + 1);
    let n = 0;
    for (;;) {
      const r = file.readSync(buf.subarray(n));
      if (r === null || r === 0) break;
      n += r;
      if (n > maxBytes) return undefined;
    }
    return new TextDecoder().decode(buf.subarray(0, n));
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable) throw err;
    return undefined;
  } finally {
    file?.close();
  }
}

function splitHostPort(hp: string): { hostname: string; port: number } {
  const i = hp.lastIndexOf(":");
  return { hostname: hp.slice(0, i), port: Number(hp.slice(i + 1)) };
}

function realDeps(config: Config): ProxyDoctorDeps {
  // rawGet, not fetch: fetch would send the probes through HTTP(S)_PROXY,
  // which may reach a metadata server the container itself cannot.
  const get = (hostname: string, port: number, path: string, timeoutMs: number) =>
    rawGet({
      hostname,
      port,
      hostHeader: port === 80 ? hostname : `${hostname}:${port}`,
      path,
      headers: { "Metadata-Flavor": "Google" },
      signal: AbortSignal.timeout(timeoutMs),
      maxBytes: 64 * 1024,
    });
  return {
    env: readEnv,
    lstat: (p) => {
      try {
        return lstatFacts(p);
      } catch (err) {
        if (err instanceof Deno.errors.NotCapable) throw err;
        return undefined; // e.g. a directory we may not enter: nothing to report there
      }
    },
    uid: () => Deno.uid(),
    gate: createGateClient({ socketPath: config.socket_path, timeoutMs: 5000 }),
    getLocal: (port, path) => get("127.0.0.1", port, path, 5000),
    probe: (hp, path) => {
      const { hostname, port } = splitHostPort(hp);
      return get(hostname, port, path, 1500);
    },
    readDir: (p) => Deno.readDirSync(p),
    readSmallFile,
  };
}

/** `gcp-metadata-proxy doctor [--json]`. */
export async function proxyDoctorCommand(
  config: Config,
  args: readonly string[],
  json: boolean,
): Promise<number> {
  if (args.length > 0) {
    throw new GateError("usage", `doctor takes no arguments, got ${JSON.stringify(args[0])}`);
  }
  const results = await runProxyDoctor(config, realDeps(config));
  printOut(
    json ? renderJson("gcp-metadata-proxy", versionString(), results) : renderText(results),
  );
  return doctorExitCode(results);
}
