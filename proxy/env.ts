/** `gcp-metadata-proxy env`: the variables that point every Google client at the proxy. */

/**
 * The lines to `eval` in a shell. All three variables are needed: Python's
 * google-auth pings via GCE_METADATA_IP, gcloud reads GCE_METADATA_ROOT, Go
 * reads GCE_METADATA_HOST; none may carry a scheme (Go breaks on `http://`).
 * NO_PROXY keeps clients that honour HTTP(S)_PROXY from sending tokens
 * through a proxy.
 */
export function envLines(port: number): string {
  const hostPort = `127.0.0.1:${port}`;
  return [
    `export GCE_METADATA_HOST=${hostPort}`,
    `export GCE_METADATA_IP=${hostPort}`,
    `export GCE_METADATA_ROOT=${hostPort}`,
    `export NO_PROXY=127.0.0.1,localhost\${NO_PROXY:+,\$NO_PROXY}`,
  ].join("\n");
}
