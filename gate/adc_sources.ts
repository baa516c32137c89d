/**
 * What an external_account ADC file needs beyond the Google endpoints: the
 * subject token file to read, the URL host to fetch it from, or the program
 * to run (and its cached output file). The launcher's resolver grants exactly
 * these (and nothing when the ADC is of another type).
 */
import { executableCommand } from "./adc_executable.ts";

/** Read paths, `host:port`s and programs named by the ADC file's credential_source. */
export interface CredentialSourceScopes {
  readonly files: string[];
  readonly hosts: string[];
  /** Absolute paths of programs the gate may run (executable-sourced credentials). */
  readonly commands: string[];
}

/** Options for {@linkcode credentialSourceScopes}. */
export interface CredentialSourceScopeOptions {
  /**
   * GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1 is set: without Google's
   * opt-in no program is granted, so the gate cannot run one even by mistake.
   */
  readonly allowExecutables?: boolean;
}

const NONE: CredentialSourceScopes = Object.freeze({ files: [], hosts: [], commands: [] });

function scopesOf(cs: Record<string, unknown>, allowExecutables: boolean): CredentialSourceScopes {
  if (typeof cs.file === "string" && cs.file.startsWith("/")) {
    return { files: [cs.file], hosts: [], commands: [] };
  }
  if (typeof cs.url === "string") {
    const u = new URL(cs.url);
    if (u.protocol === "http:" || u.protocol === "https:") {
      return {
        files: [],
        hosts: [`${u.hostname}:${u.port || (u.protocol === "https:" ? "443" : "80")}`],
        commands: [],
      };
    }
  }
  const exe = cs.executable as Record<string, unknown> | undefined;
  if (exe && typeof exe === "object") {
    const program = typeof exe.command === "string" ? executableCommand(exe.command)[0] : undefined;
    const out = typeof exe.output_file === "string" && exe.output_file.startsWith("/")
      ? [exe.output_file]
      : [];
    return {
      files: out,
      hosts: [],
      commands: allowExecutables && program?.startsWith("/") ? [program] : [],
    };
  }
  return NONE;
}

/** Scans the first existing ADC candidate (the one the gate will use). */
export function credentialSourceScopes(
  candidates: readonly string[],
  readFile: (path: string) => string | undefined,
  options: CredentialSourceScopeOptions = {},
): CredentialSourceScopes {
  for (const path of candidates) {
    let text: string | undefined;
    try {
      text = readFile(path);
    } catch {
      continue;
    }
    if (text === undefined) continue;
    try {
      const json = JSON.parse(text);
      const cs = json?.type === "external_account" ? json.credential_source : undefined;
      if (cs && typeof cs === "object") return scopesOf(cs, options.allowExecutables === true);
    } catch { /* not JSON: the gate reports it */ }
    return NONE;
  }
  return NONE;
}
