/**
 * A private OpenSSH server for tests: its own config, host key and
 * authorized_keys (key auth only) on 127.0.0.1:<free port>, no PAM, no effect
 * on any system sshd. Plus a second local user as the "remote" account.
 */
import { hasCommand, type RunningProcess, start, type TempDir, tempDir } from "./_utils.ts";

export const SSHD = "/usr/sbin/sshd";
export const REMOTE_USER = "gcpgate-remote";

/** Why the ssh tests cannot run here, or undefined when they can. */
export function sshUnavailable(): string | undefined {
  if (!hasCommand(SSHD)) return "sshd not installed (openssh-server)";
  for (const c of ["ssh", "ssh-keygen", "useradd", "setpriv", "unshare"]) {
    if (!hasCommand(c)) return `${c} not installed`;
  }
  if (Deno.uid() !== 0) return "needs root (creates a second user, runs sshd)";
  return undefined;
}

function sh(cmd: string, args: string[]): string {
  const out = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
  const d = new TextDecoder();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${d.decode(out.stderr)}`);
  return d.decode(out.stdout);
}

/** The remote account: uid, gid and home. Created once (useradd -m). */
export interface RemoteUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

export function ensureRemoteUser(): RemoteUser {
  try {
    sh("id", ["-u", REMOTE_USER]);
  } catch {
    sh("useradd", ["-m", "-s", "/bin/sh", REMOTE_USER]);
  }
  // No password, but not "locked" ("!"): without PAM, sshd refuses locked
  // accounts even for key authentication.
  sh("usermod", ["-p", "*", REMOTE_USER]);
  const uid = Number(sh("id", ["-u", REMOTE_USER]).trim());
  const gid = Number(sh("id", ["-g", REMOTE_USER]).trim());
  return { name: REMOTE_USER, uid, gid, home: `/home/${REMOTE_USER}` };
}

/** argv prefix running a program as `u` (no PAM, no new session). */
export function asUser(u: RemoteUser): string[] {
  return ["setpriv", `--reuid=${u.uid}`, `--regid=${u.gid}`, "--clear-groups", "--"];
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A running private sshd and the client-side files to reach it. */
export interface PrivateSshd extends AsyncDisposable {
  readonly port: number;
  /** Client key (IdentityFile) and known_hosts for it. */
  readonly identityFile: string;
  readonly knownHosts: string;
  readonly process: RunningProcess;
  /** ssh_config lines that reach this sshd as the remote user. */
  connectionLines(host: string, user: string): string;
}

export async function startPrivateSshd(user: RemoteUser): Promise<PrivateSshd> {
  const dir: TempDir = tempDir("gcp-gate-sshd-");
  const d = dir.path;
  // sshd reads authorized_keys as the remote user: the directory must be traversable.
  Deno.chmodSync(d, 0o755);
  sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", `${d}/host_key`]);
  sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", `${d}/id_ed25519`]);
  Deno.copyFileSync(`${d}/id_ed25519.pub`, `${d}/authorized_keys`);
  Deno.chmodSync(`${d}/authorized_keys`, 0o644);
  const port = freePort();
  Deno.writeTextFileSync(
    `${d}/known_hosts`,
    `[127.0.0.1]:${port} ${Deno.readTextFileSync(`${d}/host_key.pub`).trim()}\n`,
  );
  Deno.writeTextFileSync(
    `${d}/sshd_config`,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${d}/host_key`,
      `PidFile ${d}/sshd.pid`,
      `AuthorizedKeysFile ${d}/authorized_keys`,
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      `AllowUsers ${user.name}`,
      "AllowStreamLocalForwarding yes",
      // What docs/remote.md asks of the remote host: replace a stale socket.
      "StreamLocalBindUnlink yes",
      "",
    ].join("\n"),
  );
  // Debian's sshd refuses to start without its privilege separation directory.
  Deno.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const process = await start(SSHD, ["-D", "-e", "-f", `${d}/sshd_config`], {
    command: SSHD,
    ready: /Server listening on 127\.0\.0\.1 port/,
  });
  return {
    port,
    identityFile: `${d}/id_ed25519`,
    knownHosts: `${d}/known_hosts`,
    process,
    connectionLines: (host, remoteUser) =>
      [
        `Host ${host}`,
        "  HostName 127.0.0.1",
        `  Port ${port}`,
        `  User ${remoteUser}`,
        `  IdentityFile ${d}/id_ed25519`,
        "  IdentitiesOnly yes",
        "  BatchMode yes",
        "  StrictHostKeyChecking yes",
        `  UserKnownHostsFile ${d}/known_hosts`,
        "",
      ].join("\n"),
    async [Symbol.asyncDispose]() {
      await process[Symbol.asyncDispose]();
      await dir[Symbol.asyncDispose]();
    },
  };
}
