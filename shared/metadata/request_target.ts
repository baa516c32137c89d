/**
 * The request target as a hostile client sent it: checked before the URL
 * parser normalises it, and never echoed back unchecked.
 */
import type { WireRequest as MetadataRequest } from "../http1/parse.ts";

/** Dot segments (plain or percent-encoded) and backslashes: real clients never send them. */
export const UNNORMALIZED: RegExp = /\\|%5c|(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;

/** The request target's path as sent (before URL normalisation), without the query. */
export function rawPath(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start === -1) return "/";
  const q = url.indexOf("?", start);
  return q === -1 ? url.slice(start) : url.slice(start, q);
}

export function decodeSegment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** The Host for a redirect: the request's own, if it looks like host[:port]. */
export function safeHost(req: MetadataRequest, url: URL): string {
  const h = req.headers.get("host") ?? "";
  // Never echo arbitrary header text into Location.
  return /^[A-Za-z0-9.\-]{1,253}(:\d{1,5})?$/.test(h) || /^\[[0-9a-fA-F:.]+\](:\d{1,5})?$/.test(h)
    ? h
    : url.host;
}
