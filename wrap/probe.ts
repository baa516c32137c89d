/**
 * Checks that an outer with-prod's proxy is alive and serves us (a nested
 * with-prod is a descendant of the outer command, so it is allowed). Raw TCP
 * on purpose: `fetch` would honour HTTP_PROXY and send the probe elsewhere.
 */

/** True when `hostPort` (127.0.0.1:port) answers a metadata request with 200. */
export async function probeProxy(hostPort: string, timeoutMs = 2000): Promise<boolean> {
  const m = /^127\.0\.0\.1:(\d{1,5})$/.exec(hostPort);
  if (!m) return false;
  let conn: Deno.TcpConn | undefined;
  const timer = setTimeout(() => conn?.close(), timeoutMs);
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(m[1]) });
    await conn.write(
      new TextEncoder().encode(
        `GET /computeMetadata/v1/instance/service-accounts/default/email HTTP/1.1\r\n` +
          `Host: ${hostPort}\r\nMetadata-Flavor: Google\r\nConnection: close\r\n\r\n`,
      ),
    );
    const buf = new Uint8Array(64);
    const n = await conn.read(buf);
    return n !== null && /^HTTP\/1\.[01] 200 /.test(new TextDecoder().decode(buf.subarray(0, n)));
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch { /* closed by the timer */ }
  }
}
