/**
 * A fake Kubernetes API server for kubectl acceptance tests: TLS on
 * 127.0.0.1 (a fresh self-signed certificate made with openssl per server),
 * answers `GET /api` like a real server, and records the bearer token of every
 * request. Requests without a token get 401, as from a real server.
 *
 *   await using api = await startFakeKubeApi();
 *   // kubeconfig: server: api.url, certificate-authority-data: base64(api.caPem)
 *   api.tokens() // ["ya29.…", …] in arrival order
 */

/** A running fake API server. */
export interface FakeKubeApi extends AsyncDisposable {
  /** `https://127.0.0.1:<port>`. */
  readonly url: string;
  /** The server's self-signed certificate (its own CA), PEM. */
  readonly caPem: string;
  /** The same certificate in a file (for `certificate-authority:` / gke-gcloud-auth-plugin tests). */
  readonly caFile: string;
  /** Bearer tokens received, in order (requests without one are not listed). */
  tokens(): string[];
  /** Authenticated requests in order: path + query, and the bearer token. */
  requests(): { path: string; token: string }[];
  /** Number of requests that carried no bearer token. */
  unauthenticated(): number;
  close(): Promise<void>;
}

async function makeCert(dir: string): Promise<{ cert: string; key: string }> {
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      `${dir}/key.pem`,
      "-out",
      `${dir}/cert.pem`,
      "-days",
      "2",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`openssl failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
  return {
    cert: Deno.readTextFileSync(`${dir}/cert.pem`),
    key: Deno.readTextFileSync(`${dir}/key.pem`),
  };
}

const API_VERSIONS = {
  kind: "APIVersions",
  versions: ["v1"],
  serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: "127.0.0.1:443" }],
};

/** Starts the fake on a random 127.0.0.1 port. */
export async function startFakeKubeApi(): Promise<FakeKubeApi> {
  const dir = Deno.makeTempDirSync({ prefix: "fake-kube-api-" });
  const { cert, key } = await makeCert(dir);
  const requests: { path: string; token: string }[] = [];
  let anonymous = 0;
  const ac = new AbortController();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert,
    key,
    signal: ac.signal,
    onListen: () => {},
  }, (req) => {
    const auth = req.headers.get("authorization") ?? "";
    const m = /^Bearer (\S+)$/.exec(auth);
    if (!m) {
      anonymous++;
      return Response.json({
        kind: "Status",
        apiVersion: "v1",
        status: "Failure",
        message: "Unauthorized",
        reason: "Unauthorized",
        code: 401,
      }, { status: 401 });
    }
    const url = new URL(req.url);
    requests.push({ path: url.pathname + url.search, token: m[1]! });
    const path = url.pathname;
    if (path === "/api") return Response.json(API_VERSIONS);
    return Response.json({
      kind: "Status",
      apiVersion: "v1",
      status: "Failure",
      message: `the server could not find the requested resource (${path})`,
      reason: "NotFound",
      code: 404,
    }, { status: 404 });
  });
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    ac.abort();
    await server.finished;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const caFile = `${dir}/cert.pem`;
  return {
    url: `https://127.0.0.1:${server.addr.port}`,
    caPem: cert,
    caFile,
    tokens: () => requests.map((r) => r.token),
    requests: () => requests.map((r) => ({ ...r })),
    unauthenticated: () => anonymous,
    close,
    [Symbol.asyncDispose]: close,
  };
}
