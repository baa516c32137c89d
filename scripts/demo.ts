// deno-lint-ignore-file no-console -- the demo's output is its product
/**
 * `deno task demo`: the whole main path on a fresh machine with no Google
 * account. Starts the fake Google APIs, a real gate on a temp socket and a
 * real metadata proxy, prints what to export and a curl that returns a
 * token, and stays up until Ctrl-C.
 */
import { startFakeGoogle } from "../tests/fakes/google.ts";

const root = new URL("..", import.meta.url).pathname;
const dir = Deno.makeTempDirSync({ prefix: "gcp-gate-demo-" });
Deno.chmodSync(dir, 0o700);
const fake = await startFakeGoogle();
const adc = `${dir}/application_default_credentials.json`;
Deno.writeTextFileSync(adc, fake.adcJson(), { mode: 0o600 });
const socket = `${dir}/run/gate.sock`;
const config = `${dir}/config.toml`;
Deno.writeTextFileSync(
  config,
  [
    `project_id = "demo-project"`,
    `service_account = "dev@demo-project.iam.gserviceaccount.com"`,
    `socket_path = "${socket}"`,
    `credentials_file = "${adc}"`,
    `audit_log = "${dir}/state/audit.log"`,
    `admin_socket_path = "${dir}/admin/admin.sock"`,
    `approval_methods = "queue"`,
    fake.endpointsToml(),
  ].join("\n"),
);

const env = { ...Deno.env.toObject(), HOME: dir, NO_COLOR: "1" };
const children: Deno.ChildProcess[] = [];

async function startRole(role: string, args: string[], ready: RegExp): Promise<RegExpMatchArray> {
  const child = new Deno.Command(`${root}dist/bin/${role}`, {
    args,
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  children.push(child);
  let seen = "";
  const decoder = new TextDecoder();
  let resolveReady!: (m: RegExpMatchArray) => void;
  const readyP = new Promise<RegExpMatchArray>((r) => (resolveReady = r));
  (async () => {
    for await (const chunk of child.stderr) {
      const text = decoder.decode(chunk);
      Deno.stderr.writeSync(
        new TextEncoder().encode(
          text.replace(/^/gm, `  [${role}] `).replace(/ {2}\[[^\]]+\] $/, ""),
        ),
      );
      seen += text;
      const m = seen.match(ready);
      if (m) resolveReady(m);
    }
  })();
  void child.stdout.cancel();
  const timeout = new Promise<never>((_, rej) =>
    setTimeout(() => rej(new Error(`${role} did not start; see its output above`)), 15_000)
  );
  const exited = child.status.then((s) => {
    throw new Error(`${role} exited with code ${s.code}; see its output above`);
  });
  return await Promise.race([readyP, timeout, exited]);
}

/** `preferred` when it is free (so the default variables work), else 0 (any free port). */
function freePort(preferred: number): number {
  try {
    Deno.listen({ hostname: "127.0.0.1", port: preferred }).close();
    return preferred;
  } catch {
    return 0;
  }
}

async function cleanup(): Promise<void> {
  for (const c of children.reverse()) {
    try {
      c.kill("SIGTERM");
    } catch { /* gone */ }
    await c.status.catch(() => {});
  }
  await fake.close();
  Deno.removeSync(dir, { recursive: true });
}

try {
  console.log(`demo: fake Google APIs on ${fake.base} (no real Google account involved)`);
  await startRole("gcp-gate", ["--config", config], /ready: listening on/);
  const m = await startRole("gcp-metadata-proxy", [
    "--config",
    config,
    "--port",
    String(freePort(8173)),
  ], /listening on http:\/\/(127\.0\.0\.1:\d+)/);
  const hostPort = m[1]!;
  console.log(`
demo: gate on ${socket}, metadata proxy on ${hostPort}.

In another shell, point any Google client at the proxy:

  export GCE_METADATA_HOST=${hostPort} GCE_METADATA_IP=${hostPort} GCE_METADATA_ROOT=${hostPort}
  export NO_PROXY=127.0.0.1,localhost

and fetch a token the way every client library does:

  curl -s -H 'Metadata-Flavor: Google' http://${hostPort}/computeMetadata/v1/instance/service-accounts/default/token

Press Ctrl-C to stop (everything lives in ${dir} and is removed).`);
  await new Promise<void>((resolve) => {
    Deno.addSignalListener("SIGINT", resolve);
    Deno.addSignalListener("SIGTERM", resolve);
    for (const c of children) void c.status.then(() => resolve());
  });
} catch (err) {
  console.error(`demo: ${(err as Error).message}`);
  await cleanup();
  Deno.exit(1);
}
console.log("\ndemo: stopping");
await cleanup();
