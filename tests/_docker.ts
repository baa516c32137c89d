/**
 * Docker for the devcontainer end-to-end test, without a registry: a private
 * `dockerd` (own data root, exec root, pid file and socket) started and
 * stopped by PID, a Debian base image from `debootstrap --variant=minbase`
 * (cached as a tarball), the Dev Containers CLI from npm (cached), and a
 * non-root host user (the CLI skips `updateRemoteUserUID` for root).
 *
 * Everything slow is cached under GCP_GATE_CI_CACHE (default
 * /var/cache/gcp-gate-ci): the base image tarball, the Docker data root
 * (images and build layers survive between runs) and the CLI.
 */
import { hasCommand } from "./_utils.ts";

export const CACHE: string = Deno.env.get("GCP_GATE_CI_CACHE") ?? "/var/cache/gcp-gate-ci";
export const BASE_IMAGE = "gcp-gate-ci/bookworm-minbase:1";
export const CI_USER = "gcpgate-ci";
const DOCKER_CANDIDATES = ["/usr/bin/docker", "/usr/local/bin/docker"];

export interface CmdResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (inherits no stdin), bounded by `timeoutMs`. */
export async function sh(
  cmd: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<CmdResult> {
  const out = await new Deno.Command(cmd, {
    args,
    ...(options.env ? { env: options.env, clearEnv: true } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(options.timeoutMs ?? 120_000),
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

async function must(cmd: string, args: string[], options?: Parameters<typeof sh>[2]) {
  const r = await sh(cmd, args, options);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

/** The docker client (Debian's docker.io first). */
export function dockerClient(): string | undefined {
  return DOCKER_CANDIDATES.find((p) => hasCommand(p));
}

/** Why the devcontainer test cannot run on this machine, or undefined. */
export function missingPrerequisite(): string | undefined {
  if (Deno.build.os !== "linux") return "needs Linux";
  if (Deno.uid() !== 0) return "needs root to start a private dockerd";
  for (const c of ["dockerd", "node", "npm", "setpriv", "useradd", "tar"]) {
    if (!hasCommand(c)) return `${c} is not installed`;
  }
  if (!dockerClient()) return "no docker client (apt-get install docker.io)";
  try {
    Deno.mkdirSync(CACHE, { recursive: true });
  } catch (err) {
    return `cannot create the cache ${CACHE}: ${(err as Error).message}`;
  }
  return undefined;
}

/** A running private dockerd. */
export interface Dockerd {
  readonly pid: number;
  /** `unix://…` for DOCKER_HOST. */
  readonly host: string;
  /** Runs the docker client against this daemon. */
  docker(args: string[], timeoutMs?: number): Promise<CmdResult>;
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts dockerd with its own roots under `dir` (exec root, pid file, socket)
 * and the cached data root; its socket is group-owned by `group`. Throws
 * with dockerd's last log lines when it is not ready within 30 s.
 */
export async function startDockerd(dir: string, group: string): Promise<Dockerd> {
  const logPath = `${dir}/dockerd.log`;
  const sock = `${dir}/docker.sock`;
  const log = Deno.openSync(logPath, { write: true, create: true, truncate: true });
  const child = new Deno.Command("dockerd", {
    args: [
      `--data-root=${CACHE}/docker`,
      `--exec-root=${dir}/exec`,
      `--pidfile=${dir}/dockerd.pid`,
      `-H`,
      `unix://${sock}`,
      `--group=${group}`,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) log.writeSync(chunk);
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]).catch(() => {});
  let exited = false;
  const status = child.status.then(async (s) => {
    exited = true;
    await pumps;
    log.close();
    return s;
  });
  const client = dockerClient()!;
  const env = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", DOCKER_HOST: `unix://${sock}` };
  const readLog = (): string => {
    try {
      return Deno.readTextFileSync(logPath);
    } catch {
      return "";
    }
  };
  const d: Dockerd = {
    pid: child.pid,
    host: `unix://${sock}`,
    docker: (args, timeoutMs) => sh(client, args, { env, timeoutMs: timeoutMs ?? 300_000 }),
    log: readLog,
    async stop() {
      if (!exited) {
        try {
          Deno.kill(child.pid, "SIGTERM");
        } catch { /* gone */ }
        const t = setTimeout(() => {
          try {
            Deno.kill(child.pid, "SIGKILL");
          } catch { /* gone */ }
        }, 20_000);
        await status;
        clearTimeout(t);
      } else await status;
    },
  };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (exited) break;
    if ((await d.docker(["version", "--format", "{{.Server.Version}}"], 5000)).code === 0) {
      return d;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  await d.stop();
  const tail = readLog().trim().split("\n").slice(-3).join(" | ");
  throw new Error(`dockerd did not start: ${tail || "(no log)"}`);
}

/** The Debian mirror apt uses on this machine (deb822 `URIs:` or a `deb` line). */
export function aptMirror(): string {
  const files = ["/etc/apt/sources.list"];
  try {
    for (const e of Deno.readDirSync("/etc/apt/sources.list.d")) {
      files.push(`/etc/apt/sources.list.d/${e.name}`);
    }
  } catch { /* none */ }
  for (const f of files) {
    let text = "";
    try {
      text = Deno.readTextFileSync(f);
    } catch {
      continue;
    }
    for (const m of text.matchAll(/^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)/gm)) {
      const uri = m[1]!;
      if (/\/debian\/?$/.test(uri)) return uri;
    }
  }
  return "http://deb.debian.org/debian";
}

/**
 * Makes sure BASE_IMAGE exists: already in the (cached) data root, else
 * imported from the cached tarball, else debootstrapped first. Returns how.
 */
export async function ensureBaseImage(d: Dockerd): Promise<string> {
  if ((await d.docker(["image", "inspect", BASE_IMAGE])).code === 0) return "cached image";
  const tarball = `${CACHE}/bookworm-minbase.tar`;
  let how = "imported cached tarball";
  try {
    Deno.statSync(tarball);
  } catch {
    if (!hasCommand("debootstrap")) throw new Error("debootstrap is not installed");
    const rootfs = `${CACHE}/rootfs.${Deno.pid}`;
    try {
      await must("debootstrap", ["--variant=minbase", "bookworm", rootfs, aptMirror()], {
        timeoutMs: 600_000,
      });
      await must("tar", ["--one-file-system", "-C", rootfs, "-cf", `${tarball}.tmp`, "."], {
        timeoutMs: 300_000,
      });
      Deno.renameSync(`${tarball}.tmp`, tarball);
    } finally {
      await sh("rm", ["-rf", "--one-file-system", rootfs]);
    }
    how = "debootstrapped and imported";
  }
  const r = await d.docker(["import", tarball, BASE_IMAGE]);
  if (r.code !== 0) throw new Error(`docker import failed: ${r.stderr}`);
  return how;
}

/** The Dev Containers CLI (`devcontainer.js`), installed from npm into the cache once. */
export async function devcontainerCli(): Promise<string> {
  const dir = `${CACHE}/devcontainers-cli`;
  const js = `${dir}/node_modules/@devcontainers/cli/devcontainer.js`;
  try {
    Deno.statSync(js);
    return js;
  } catch { /* install it */ }
  Deno.mkdirSync(dir, { recursive: true });
  await must("npm", ["i", "--no-audit", "--no-fund", "--prefix", dir, "@devcontainers/cli@0.89"], {
    timeoutMs: 300_000,
  });
  return js;
}

/** The non-root host user (created when missing): uid, gid, home. */
export async function ciUser(): Promise<{ uid: number; gid: number; home: string }> {
  if ((await sh("id", ["-u", CI_USER])).code !== 0) {
    await must("useradd", [
      "--create-home",
      "--home-dir",
      `/var/lib/${CI_USER}`,
      "--shell",
      "/usr/sbin/nologin",
      CI_USER,
    ]);
  }
  const uid = Number((await must("id", ["-u", CI_USER])).stdout.trim());
  const gid = Number((await must("id", ["-g", CI_USER])).stdout.trim());
  if (!(uid > 0)) throw new Error(`${CI_USER} must not be root`);
  return { uid, gid, home: `/var/lib/${CI_USER}` };
}

/** argv prefix that runs a command as the CI user with their groups. */
export function asCiUser(): string[] {
  return ["setpriv", `--reuid=${CI_USER}`, `--regid=${CI_USER}`, "--init-groups", "--"];
}

/** PEM files for the image: this host's extra CAs (an egress proxy may re-sign HTTPS). */
export function hostCaCerts(): { name: string; pem: string }[] {
  const out: { name: string; pem: string }[] = [];
  try {
    for (const e of Deno.readDirSync("/usr/local/share/ca-certificates")) {
      if (e.isFile && e.name.endsWith(".crt")) {
        out.push({
          name: e.name,
          pem: Deno.readTextFileSync(`/usr/local/share/ca-certificates/${e.name}`),
        });
      }
    }
  } catch { /* none */ }
  const extra = Deno.env.get("NODE_EXTRA_CA_CERTS");
  if (out.length === 0 && extra) {
    try {
      out.push({ name: "host-extra.crt", pem: Deno.readTextFileSync(extra) });
    } catch { /* unreadable */ }
  }
  return out;
}
