/**
 * Which ADC file is in force, and when it changed. The file is looked up on
 * every upstream mint (cache hits never touch the disk), so a re-login on the
 * host takes effect on the next request without restarting the gate.
 */
import { isGateError } from "../shared/errors.ts";
import { expiredError, parseSourceCredential, type SourceCredential } from "./adc.ts";
import type { AdcDeps } from "./adc.ts";
import type { GoogleApi, MintedToken } from "./google_api.ts";
import { readEnv, readTextFileIfExists } from "../shared/cli.ts";
import type { Config } from "../shared/config.ts";
import { ALLOW_EXECUTABLES_ENV } from "./adc_executable.ts";

/** File identity used to notice a re-login (a rewrite changes mtime or size). */
export type FileStamp = (path: string) => string | undefined;

/** Dependencies of {@linkcode createCredentialProvider}. */
export interface CredentialProviderDeps extends AdcDeps {
  /** ADC paths, in the order Google's libraries search them. */
  candidates: readonly string[];
  stamp: FileStamp;
  /** Called when the credential changed (new file content or after an expiry): drop caches. */
  onChange?: () => void;
}

export interface CredentialProvider {
  /** The current credential; throws `credentials_expired` when no ADC file exists. */
  current(): SourceCredential;
  /** An access token for the ADC principal; forgets the credential when it is refused. */
  token(): Promise<MintedToken>;
}

/** The real {@linkcode FileStamp}: mtime, size and inode. */
export function statStamp(path: string): string | undefined {
  try {
    const st = Deno.statSync(path);
    return `${st.mtime?.getTime() ?? 0}:${st.size}:${st.ino ?? 0}`;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** Creates the provider. */
export function createCredentialProvider(deps: CredentialProviderDeps): CredentialProvider {
  let loaded: { key: string; cred: SourceCredential } | undefined;

  function current(): SourceCredential {
    for (const path of deps.candidates) {
      const stamp = deps.stamp(path);
      if (stamp === undefined) continue;
      const key = `${path}\n${stamp}`;
      if (loaded?.key === key) return loaded.cred;
      const text = deps.readFile(path);
      if (text === undefined) continue;
      const hadOne = loaded !== undefined;
      loaded = undefined;
      const cred = parseSourceCredential(path, text, deps);
      loaded = { key, cred };
      if (hadOne) deps.onChange?.();
      return cred;
    }
    if (loaded) {
      loaded = undefined;
      deps.onChange?.();
    }
    throw expiredError(
      deps.candidates.join(" or "),
      deps.hostname(),
      "do not exist",
    );
  }

  return {
    current,
    async token() {
      const cred = current();
      try {
        return await cred.getToken();
      } catch (err) {
        if (isGateError(err, "credentials_expired") && loaded?.cred === cred) {
          // Build a fresh credential next time: the same file may work again
          // (restored grant) and a new file certainly will.
          loaded = undefined;
          deps.onChange?.();
        }
        throw err;
      }
    },
  };
}

/**
 * The engineer's ADC as every gate command reads it (the daemon, doctor,
 * accounts/can): the config's candidate files, re-read when they change, and
 * executable sources only with Google's own opt-in variable.
 */
export function hostCredentialProvider(
  config: Pick<Config, "endpoints" | "credentials_candidates">,
  api: GoogleApi,
  onChange?: () => void,
): CredentialProvider {
  return createCredentialProvider({
    api,
    endpoints: config.endpoints,
    candidates: config.credentials_candidates,
    readFile: readTextFileIfExists,
    stamp: statStamp,
    // Google's opt-in for executable-sourced credentials, honoured as its libraries do.
    allowExecutables: readEnv(ALLOW_EXECUTABLES_ENV) === "1",
    hostname: () => Deno.hostname(),
    ...(onChange ? { onChange } : {}),
  });
}
