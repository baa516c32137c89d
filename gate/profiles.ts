/**
 * Profiles: one gate serving several containers, each on its own socket with
 * its own identity and limits. The socket is the identity: a request is
 * served under the profile whose socket it arrived on, so nothing a container
 * sends can name another profile.
 *
 * A config without `[profiles.*]` tables is one implicit profile built from
 * the top-level keys, so today's configs behave exactly as before.
 */
import { type Config, PROFILE_KEYS, type ProfileKey } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import { sharesMountedDir } from "./admin_server.ts";

/** One profile's settings: the top-level defaults overridden by its table. */
export type Profile = Readonly<Pick<Config, ProfileKey>> & {
  readonly name: string;
  /**
   * False for the implicit profile of a config without profiles: its log and
   * audit lines carry no profile name, exactly as before profiles existed.
   */
  readonly named: boolean;
};

/** The name the implicit profile is listed under (`gcp-gate status`). */
export const IMPLICIT_PROFILE = "default";

function pick(config: Config): Pick<Config, ProfileKey> {
  const out: Record<string, unknown> = {};
  for (const key of PROFILE_KEYS) out[key] = config[key];
  return out as Pick<Config, ProfileKey>;
}

/**
 * The profiles `config` defines, validated: each named profile sets its own
 * socket_path; no two profiles' socket directories are the same, nested in
 * one another (mounting one would expose the other), or shared with the admin
 * socket's. Symlinks are resolved as far as the paths exist.
 */
export function resolveProfiles(config: Config): readonly Profile[] {
  if (config.profiles.length === 0) {
    return Object.freeze([
      Object.freeze({ ...pick(config), name: IMPLICIT_PROFILE, named: false }),
    ]);
  }
  const where = config.config_file ?? "the config file";
  const profiles = config.profiles.map((table): Profile => {
    if (table.values.socket_path === undefined) {
      throw new GateError(
        "config",
        `${where}: [profiles.${table.name}] needs its own socket_path (in a directory of its own, which only its container mounts)`,
      );
    }
    return Object.freeze({ ...pick(config), ...table.values, name: table.name, named: true });
  });
  for (const [i, a] of profiles.entries()) {
    if (sharesMountedDir(config.admin_socket_path, a.socket_path)) {
      throw new GateError(
        "config",
        `${where}: [profiles.${a.name}] socket ${a.socket_path} shares a directory tree with admin_socket_path ${config.admin_socket_path}; a container mounting it could approve its own requests`,
      );
    }
    for (const b of profiles.slice(i + 1)) {
      if (sharesMountedDir(a.socket_path, b.socket_path)) {
        throw new GateError(
          "config",
          `${where}: profiles ${a.name} and ${b.name} share a socket directory (${a.socket_path}, ${b.socket_path}); give each profile a directory of its own, not inside another's`,
        );
      }
    }
  }
  return Object.freeze(profiles);
}

/** The keys whose change needs new collaborators (everything but the socket). */
export function settingsChanged(a: Profile, b: Profile): boolean {
  return PROFILE_KEYS.some((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}
