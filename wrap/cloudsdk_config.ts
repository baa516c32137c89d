/**
 * The wrapped command's private gcloud configuration directory. gcloud reads
 * the prod token from a file named by `auth/access_token_file`, so the token
 * never sits in an environment variable. The directory is 0700 and the token
 * file 0600; a refreshed token replaces the file atomically (write a new file,
 * then rename), so gcloud never reads half a token.
 */
import { GateError } from "../shared/errors.ts";

/** A private CLOUDSDK_CONFIG directory. */
export interface PrivateConfig {
  readonly dir: string;
  readonly tokenFile: string;
  /** Replaces the token file atomically. */
  writeToken(token: string): void;
  /** Deletes the directory and everything gcloud wrote into it. */
  remove(): void;
}

/** Options for {@linkcode createPrivateConfig}. */
export interface PrivateConfigOptions {
  readonly account: string;
  readonly project: string | undefined;
  /** Parent directory (default: the system temp dir). */
  readonly parent?: string;
}

function iniValue(name: string, value: string): string {
  // A newline would let a value start a new section of the file.
  if (/[\r\n]/.test(value)) {
    throw new GateError("bad_request", `${name} contains a line break; refusing to write it`);
  }
  return value;
}

/** Creates the directory with its config file (no token yet). */
export function createPrivateConfig(options: PrivateConfigOptions): PrivateConfig {
  const dir = Deno.makeTempDirSync({
    prefix: "with-prod-",
    ...(options.parent ? { dir: options.parent } : {}),
  });
  try {
    Deno.chmodSync(dir, 0o700);
    const tokenFile = `${dir}/access_token`;
    Deno.mkdirSync(`${dir}/configurations`, { mode: 0o700 });
    const lines = ["[core]", `account = ${iniValue("account", options.account)}`];
    if (options.project !== undefined) {
      lines.push(`project = ${iniValue("project", options.project)}`);
    }
    lines.push(
      "disable_usage_reporting = true",
      "",
      "[auth]",
      `access_token_file = ${tokenFile}`,
      "",
      "[component_manager]",
      "disable_update_check = true",
      "",
    );
    Deno.writeTextFileSync(`${dir}/configurations/config_default`, lines.join("\n"), {
      mode: 0o600,
    });
    Deno.writeTextFileSync(`${dir}/active_config`, "default", { mode: 0o600 });
    let counter = 0;
    return {
      dir,
      tokenFile,
      writeToken(token) {
        const tmp = `${dir}/.access_token.${Deno.pid}.${++counter}.tmp`;
        Deno.writeTextFileSync(tmp, token, { mode: 0o600, createNew: true });
        // The mode above is filtered by the umask; make 0600 exact before it is visible.
        Deno.chmodSync(tmp, 0o600);
        Deno.renameSync(tmp, tokenFile);
      },
      remove() {
        try {
          Deno.removeSync(dir, { recursive: true });
        } catch (err) {
          if (!(err instanceof Deno.errors.NotFound)) throw err;
        }
      },
    };
  } catch (err) {
    Deno.removeSync(dir, { recursive: true });
    throw err;
  }
}
