/**
 * A GCE metadata server emulator as a pure `(Request) => Response` handler,
 * shared by gcp-metadata-proxy and with-prod's temporary proxy.
 */
import { DEFAULT_SCOPES } from "../protocol.ts";
import { GateError } from "../errors.ts";
import { sanitizeMessage } from "../redact.ts";
import type { TokenCache } from "./token_cache.ts";

/** Dependencies of {@linkcode createMetadataHandler}. */
export interface MetadataDeps {
  tokens: TokenCache;
  projectId: string | undefined;
  serviceAccount: string | undefined;
  now?: () => number;
}

const BASE_HEADERS: Readonly<Record<string, string>> = {
  "metadata-flavor": "Google",
  server: "Metadata Server for VM",
  "x-xss-protection": "0",
  "x-frame-options": "SAMEORIGIN",
};

function reply(
  body: string,
  status: number,
  type: "text" | "json",
  extra: Record<string, string> = {},
): Response {
  return new Response(body, {
    status,
    headers: {
      ...BASE_HEADERS,
      "content-type": type === "json" ? "application/json" : "application/text",
      ...extra,
    },
  });
}

const text = (body: string, status = 200): Response => reply(body, status, "text");
const json = (body: unknown, status = 200): Response => reply(JSON.stringify(body), status, "json");

export function createMetadataHandler(deps: MetadataDeps): (req: Request) => Promise<Response> {
  const now = deps.now ?? Date.now;

  async function route(req: Request, url: URL): Promise<Response> {
    const path = url.pathname;
    if (path === "/") return text("computeMetadata/\n");
    if (!path.startsWith("/computeMetadata/")) return text("Not Found\n", 404);
    if (req.headers.has("x-forwarded-for")) {
      return text("Forbidden: X-Forwarded-For is not allowed\n", 403);
    }
    if (req.headers.get("metadata-flavor") !== "Google") {
      return text('Missing required header: "Metadata-Flavor: Google"\n', 403);
    }
    if (path === "/computeMetadata/v1/instance") {
      return new Response(null, {
        status: 301,
        headers: { ...BASE_HEADERS, location: `http://${url.host}${path}/${url.search}` },
      });
    }
    if (path === "/computeMetadata/v1/instance/") return text("service-accounts/\n");
    if (path === "/computeMetadata/v1/project/project-id") {
      return deps.projectId ? text(deps.projectId) : text("Not Found\n", 404);
    }
    const m = /^\/computeMetadata\/v1\/instance\/service-accounts\/([^/]+)\/token$/.exec(path);
    if (m && (m[1] === "default" || m[1] === deps.serviceAccount)) {
      const scopesParam = url.searchParams.get("scopes");
      const scopes = scopesParam
        ? scopesParam.split(",").filter((s) => s !== "")
        : [...DEFAULT_SCOPES];
      let t;
      try {
        t = await deps.tokens.get(scopes);
      } catch (err) {
        const stale = deps.tokens.peekValid(scopes);
        if (!stale) throw err;
        t = stale;
      }
      return json({
        access_token: t.accessToken,
        expires_in: Math.max(0, Math.floor((t.expiresAt - now()) / 1000)),
        token_type: "Bearer",
      });
    }
    return text("Not Found\n", 404);
  }

  return async (req) => {
    if (req.method !== "GET" && req.method !== "HEAD") return text("Method Not Allowed\n", 405);
    try {
      return await route(req, new URL(req.url));
    } catch (err) {
      const msg = err instanceof GateError ? err.message : "internal error";
      return text(`${sanitizeMessage(msg)}\n`, 503);
    }
  };
}
