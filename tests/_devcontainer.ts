/**
 * Fixtures for tests/devcontainer_test.ts: the test image (the cached
 * minbase image + this host's CA certificates + curl and Debian's
 * python3-google-auth, no Node) and the two workspaces, each using the
 * Feature exactly as `deno task release --feature` writes it.
 */
import { BASE_IMAGE, type Dockerd, hostCaCerts, sh } from "./_docker.ts";
import { ROOT } from "./_utils.ts";

/** The documented mount (README, example, Feature docs): read-only, string form. */
export const SOCKET_MOUNT =
  "type=bind,source=${localEnv:XDG_RUNTIME_DIR}/gcp-gate,target=/run/gcp-gate,readonly";

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Builds (or finds, tagged by content) the image the devcontainer starts
 * from. HTTPS from containers here goes through an egress proxy that
 * re-signs certificates, so the host's extra CAs are trusted in the image.
 */
export async function buildTestImage(d: Dockerd, ctx: string): Promise<string> {
  const certs = hostCaCerts();
  const dockerfile = [
    `FROM ${BASE_IMAGE}`,
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8",
    "COPY ca/ /usr/local/share/ca-certificates/",
    "RUN apt-get update \\",
    " && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\",
    "    ca-certificates curl passwd python3 python3-google-auth python3-requests \\",
    " && update-ca-certificates && rm -rf /var/lib/apt/lists/* \\",
    " && useradd --create-home --shell /bin/sh vscode",
    "ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt",
    "",
  ].join("\n");
  const tag = `gcp-gate-ci/devcontainer-test:${
    (await sha256Hex(dockerfile + certs.map((c) => c.pem).join(""))).slice(0, 12)
  }`;
  if ((await d.docker(["image", "inspect", tag])).code === 0) return tag;
  Deno.mkdirSync(`${ctx}/ca`, { recursive: true });
  Deno.writeTextFileSync(`${ctx}/Dockerfile`, dockerfile);
  for (const c of certs) Deno.writeTextFileSync(`${ctx}/ca/${c.name}`, c.pem);
  const r = await d.docker(["build", "-q", "-t", tag, ctx], 600_000);
  if (r.code !== 0) throw new Error(`docker build of the test image failed:\n${r.stderr}`);
  return tag;
}

export interface WorkspaceOptions {
  readonly root: string;
  /** With the socket mount. */
  readonly ws: string;
  /** Without it (the failure path). */
  readonly wsNoSock: string;
  readonly image: string;
}

/** Writes both workspaces; the Feature comes from `deno task release --feature`. */
export async function workspace(o: WorkspaceOptions): Promise<void> {
  const feature = `${o.ws}/.devcontainer/gcp-gate-feature`;
  Deno.mkdirSync(`${o.ws}/.devcontainer`, { recursive: true });
  const rel = await sh(
    Deno.execPath(),
    ["run", "-A", `${ROOT}/scripts/release.ts`, "--feature", "--feature-dir", feature],
    { cwd: ROOT, timeoutMs: 180_000 },
  );
  if (rel.code !== 0) throw new Error(`release --feature failed: ${rel.stderr}`);
  const config = (extra: Record<string, unknown>) =>
    JSON.stringify(
      {
        name: "gcp-gate e2e",
        image: o.image,
        features: { "./gcp-gate-feature": {} },
        remoteUser: "vscode",
        updateRemoteUserUID: true,
        ...extra,
      },
      null,
      2,
    );
  Deno.writeTextFileSync(
    `${o.ws}/.devcontainer/devcontainer.json`,
    config({ mounts: [SOCKET_MOUNT] }),
  );
  Deno.copyFileSync(`${ROOT}/tests/clients/python_metadata.py`, `${o.ws}/python_metadata.py`);
  Deno.mkdirSync(`${o.wsNoSock}/.devcontainer`, { recursive: true });
  const cp = await sh("cp", ["-a", feature, `${o.wsNoSock}/.devcontainer/`]);
  if (cp.code !== 0) throw new Error(`cp failed: ${cp.stderr}`);
  // No mount; the helper gives up after 2 s instead of 30.
  Deno.writeTextFileSync(
    `${o.wsNoSock}/.devcontainer/devcontainer.json`,
    config({ containerEnv: { GCP_GATE_START_TIMEOUT: "2" } }),
  );
}

/** The mount at `target` in /proc/self/mountinfo text: its per-mount options. */
export function findMount(mountinfo: string, target: string): { options: string } | undefined {
  for (const line of mountinfo.split("\n")) {
    const f = line.split(" ");
    if (f[4] === target && f[5] !== undefined) return { options: f[5] };
  }
  return undefined;
}
