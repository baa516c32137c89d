/**
 * POSIX path pieces for absolute paths from config (no `node:path`: importing
 * it boots Deno's Node layer, ~16 ms per process start).
 */

/** The directory part: `/a/b/c.sock` → `/a/b`, `/c.sock` → `/`. */
export function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

/** The last part: `/a/b/c.sock` → `c.sock`. */
export function basename(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}
