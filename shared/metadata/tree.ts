/**
 * The metadata tree's building blocks: leaves (one value), directories (a
 * listing, children, and GCE's camelCase recursive JSON form).
 */
import { type Payload, textPayload } from "./responses.ts";

/** What a leaf may read from its request. */
export interface LeafContext {
  readonly url: URL;
  readonly params: URLSearchParams;
}

/** One value of the tree. */
export type Leaf = { readonly kind: "leaf"; get(ctx: LeafContext): Promise<Payload> };
/** A directory of the tree. */
export type Dir = {
  readonly kind: "dir";
  /** Entries for the listing; sub-directories end with `/`. */
  list(): Promise<string[]>;
  child(name: string): Promise<MetadataNode | undefined>;
  json(): Promise<unknown>;
};
/** A node of the tree. */
export type MetadataNode = Leaf | Dir;

/** A leaf computed per request. */
export const leaf = (get: (ctx: LeafContext) => Promise<Payload>): Leaf => ({ kind: "leaf", get });
/** A leaf whose text does not depend on the request. */
export const constText = (value: () => Promise<string>): Leaf =>
  leaf(async () => textPayload(await value()));

/** A directory of fixed children; `json` builds GCE's camelCase recursive form. */
export function staticDir(
  children: Record<string, MetadataNode>,
  json: () => Promise<unknown>,
  hidden: Record<string, MetadataNode> = {},
): Dir {
  return {
    kind: "dir",
    list: () =>
      Promise.resolve(
        Object.entries(children).map(([k, n]) => (n.kind === "dir" ? `${k}/` : k)),
      ),
    child: (name) => Promise.resolve(children[name] ?? hidden[name]),
    json,
  };
}

/** A directory with nothing in it (`attributes/`). */
export function emptyDir(): Dir {
  return staticDir({}, () => Promise.resolve({}));
}
