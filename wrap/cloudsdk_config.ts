/**
 * The wrapped command's private gcloud configuration directory: it names the
 * session's account and project and holds NO credential. With no credential
 * of its own, gcloud falls back to GCE credentials and reads its token from
 * the metadata server, which inside with-prod is the PID-restricted temporary
 * proxy (`GCE_METADATA_ROOT`). A token file here (gcloud's
 * `auth/access_token_file`) would be readable by every process running as
 * the same uid, which would defeat that PID restriction, so none is written.
 * The directory is still private (0700), and gcloud's own habits of writing
 * tokens into it are switched off: file logging (its logs echo command
 * output) and the access-token cache (see {@linkcode createInertTokenCache}).
 */
import { DatabaseSync } from "node:sqlite";
import { GateError } from "../shared/errors.ts";

/** gcloud's token cache file inside CLOUDSDK_CONFIG and its table (gcloud 4xx–5xx). */
const TOKEN_CACHE_FILE = "access_tokens.db";
const TOKEN_CACHE_SCHEMA = `
CREATE TABLE access_tokens (account_id TEXT PRIMARY KEY, access_token TEXT,
  token_expiry TIMESTAMP, rapt_token TEXT, id_token TEXT);
CREATE TRIGGER with_prod_keeps_no_tokens BEFORE INSERT ON access_tokens
  BEGIN SELECT RAISE(IGNORE); END;
CREATE TRIGGER with_prod_keeps_no_token_updates BEFORE UPDATE ON access_tokens
  BEGIN SELECT RAISE(IGNORE); END;
`;

/**
 * gcloud stores every access token it gets (GCE ones included) in the sqlite
 * file `access_tokens.db`, which any same-uid process could read. No property
 * turns that off, and a read-only or broken file makes gcloud warn or crash,
 * so with-prod pre-creates the table gcloud expects with triggers that
 * silently drop every write (`RAISE(IGNORE)`): gcloud's cache stays empty and
 * gcloud asks the proxy each time.
 */
function createInertTokenCache(dir: string): void {
  const path = `${dir}/${TOKEN_CACHE_FILE}`;
  const db = new DatabaseSync(path);
  try {
    db.exec(TOKEN_CACHE_SCHEMA);
  } finally {
    db.close();
  }
  Deno.chmodSync(path, 0o600);
}

/** A private CLOUDSDK_CONFIG directory. */
export interface PrivateConfig {
  readonly dir: string;
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

/** Creates the directory with its config file (account and project, no credential). */
export function createPrivateConfig(options: PrivateConfigOptions): PrivateConfig {
  const dir = Deno.makeTempDirSync({
    prefix: "with-prod-",
    ...(options.parent ? { dir: options.parent } : {}),
  });
  try {
    Deno.chmodSync(dir, 0o700);
    Deno.mkdirSync(`${dir}/configurations`, { mode: 0o700 });
    const lines = ["[core]", `account = ${iniValue("account", options.account)}`];
    if (options.project !== undefined) {
      lines.push(`project = ${iniValue("project", options.project)}`);
    }
    lines.push(
      "disable_usage_reporting = true",
      // gcloud's log files record command output, a printed token included.
      "disable_file_logging = true",
      "",
      "[component_manager]",
      "disable_update_check = true",
      "",
    );
    Deno.writeTextFileSync(`${dir}/configurations/config_default`, lines.join("\n"), {
      mode: 0o600,
    });
    Deno.writeTextFileSync(`${dir}/active_config`, "default", { mode: 0o600 });
    createInertTokenCache(dir);
    return {
      dir,
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
