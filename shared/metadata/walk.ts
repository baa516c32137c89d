/** Answers a `/computeMetadata/<path>` request from the tree, with `wait_for_change`. */
import { isRecursive, parseWaitParams } from "./params.ts";
import {
  errorPayload,
  etagOf,
  jsonPayload,
  type Payload,
  redirectResponse,
  textPayload,
  toResponse,
} from "./responses.ts";
import type { WireRequest as MetadataRequest } from "../http1/parse.ts";
import { decodeSegment, safeHost } from "./request_target.ts";
import type { Dir, Leaf, LeafContext, MetadataNode } from "./tree.ts";

/** The path every tree path is under. */
export const PREFIX = "/computeMetadata/";

/** Bounds of `wait_for_change`, and how many wait now (shared by every request). */
export interface WaitState {
  readonly maxWaitSeconds: number;
  readonly maxWaiters: number;
  /** Aborting it ends every wait (server shutdown). */
  readonly signal: AbortSignal | undefined;
  waiters: number;
}

/** Options of {@linkcode serveTree}. */
export interface ServeTreeOptions {
  root: Dir;
  url: URL;
  head: boolean;
  wait: WaitState;
}

/** The 404 answer of every path the tree does not have. */
export function notFound(head: boolean): Response {
  return toResponse(errorPayload(404, "Not Found: no such metadata path"), head);
}

/** Walks `/computeMetadata/<rel>` and answers it. */
export async function serveTree(req: MetadataRequest, opts: ServeTreeOptions): Promise<Response> {
  const { url, head } = opts;
  const rel = url.pathname.slice(PREFIX.length);
  const segments = rel === "" ? [] : rel.split("/");
  const dirForm = rel === "" || rel.endsWith("/");
  if (dirForm && segments.length > 0) segments.pop();
  let node: MetadataNode = opts.root;
  for (const raw of segments) {
    if (node.kind !== "dir" || raw === "") return notFound(head);
    const next: MetadataNode | undefined = await node.child(decodeSegment(raw));
    if (!next) return notFound(head);
    node = next;
  }
  const ctx: LeafContext = { url, params: url.searchParams };
  if (node.kind === "dir" && !dirForm) {
    // GCE redirects a directory to its slash form and keeps the query.
    return redirectResponse(`http://${safeHost(req, url)}${url.pathname}/${url.search}`);
  }
  if (node.kind === "leaf" && dirForm) return notFound(head);
  const dir = node.kind === "dir" ? node : undefined;
  const produce = (): Promise<Payload> =>
    dir
      ? (isRecursive(ctx.params)
        ? dir.json().then((v) => jsonPayload(v))
        : dir.list().then((l) => textPayload(l.map((e) => `${e}\n`).join(""))))
      : (node as Leaf).get(ctx);
  let payload = await produce();
  let etag = etagOf(payload.body);
  const w = opts.wait;
  const wait = parseWaitParams(ctx.params, w.maxWaitSeconds);
  if (wait && wait.lastEtag === etag && w.waiters < w.maxWaiters) {
    // Nothing we serve changes while we run except tokens: wait out the
    // (bounded) timeout, then answer with the current value.
    w.waiters++;
    try {
      await sleep(wait.timeoutSec * 1000, w.signal);
    } finally {
      w.waiters--;
    }
    payload = await produce();
    etag = etagOf(payload.body);
  }
  return toResponse(payload, head, etag);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done);
  });
}
