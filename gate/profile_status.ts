/** What `gcp-gate status` shows of one profile: lifetimes and prefixes, never a token. */
import type { Profile } from "./profiles.ts";
import type { Session } from "./sessions.ts";

/** A profile as `gcp-gate status` lists it (lifetimes, never tokens). */
export interface ProfileStatus {
  name: string;
  socket_path: string;
  listening: boolean;
  /** Connections open on the socket now, and its cap. */
  connections: { open: number; max: number };
  project: string | null;
  service_account: string | null;
  prod_service_account: string | null;
  dev_tokens: { key: string; expires_in: number }[];
  sessions: { id_prefix: string; project: string | null; expires_in: number }[];
}

/** What `gcp-gate status` shows of one profile now. */
export function profileStatus(of: {
  profile: Profile;
  expiries: ReadonlyMap<string, number>;
  sessions: readonly Session[];
  stopped: boolean;
  connections: number;
}): ProfileStatus {
  const { profile, expiries, sessions, stopped } = of;
  const now = Date.now();
  let listening = false;
  try {
    listening = !stopped && Deno.lstatSync(profile.socket_path).isSocket === true;
  } catch { /* gone */ }
  return {
    name: profile.name,
    socket_path: profile.socket_path,
    listening,
    connections: { open: of.connections, max: profile.max_connections },
    project: profile.project_id ?? null,
    service_account: profile.service_account ?? null,
    prod_service_account: profile.prod_service_account ?? null,
    dev_tokens: [...expiries].filter(([, exp]) => exp > now).map(([key, exp]) => ({
      key,
      expires_in: Math.floor((exp - now) / 1000),
    })),
    sessions: sessions.map((s) => ({
      id_prefix: s.prefix,
      project: s.project ?? null,
      expires_in: Math.max(0, Math.floor((s.expiresAt - now) / 1000)),
    })),
  };
}
