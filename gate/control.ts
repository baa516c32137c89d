/**
 * What the admin socket may ask of the running daemon besides approvals:
 * its status and a reload. The admin server starts before the daemon, so it
 * holds a slot the daemon fills in once its profiles listen.
 */
import type { ProfileStatus } from "./profile_status.ts";

/** `GET /status` on the admin socket. Lifetimes only: never a token. */
export interface GateStatus {
  config_file: string | null;
  profiles: (ProfileStatus & { pending: { id: string; expires_in: number }[] })[];
}

/** `POST /reload`: what changed. */
export interface ReloadResult {
  started: string[];
  stopped: string[];
  updated: string[];
  /** Gate-wide keys that changed but apply only after a restart. */
  needs_restart: string[];
}

export interface GateControl {
  status(): Omit<GateStatus, "profiles"> & { profiles: ProfileStatus[] };
  /** Re-reads the config; throws GateError `config` (nothing changed) when it is invalid. */
  reload(): Promise<ReloadResult>;
}

/** Filled by the daemon when it is up; empty before and after. */
export interface ControlSlot {
  current: GateControl | undefined;
}
