/**
 * What an external_account ADC file needs beyond the Google endpoints: the
 * subject token file to read, or the URL host to fetch it from. The launcher's
 * resolver grants exactly these (and nothing when the ADC is of another type).
 */

/** Read paths and `host:port`s named by the ADC file's credential_source. */
export interface CredentialSourceScopes {
  readonly files: string[];
  readonly hosts: string[];
}

/** Scans the first existing ADC candidate (the one the gate will use). */
export function credentialSourceScopes(
  candidates: readonly string[],
  readFile: (path: string) => string | undefined,
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
      if (typeof cs?.file === "string" && cs.file.startsWith("/")) {
        return { files: [cs.file], hosts: [] };
      }
      if (typeof cs?.url === "string") {
        const u = new URL(cs.url);
        if (u.protocol === "http:" || u.protocol === "https:") {
          return {
            files: [],
            hosts: [`${u.hostname}:${u.port || (u.protocol === "https:" ? "443" : "80")}`],
          };
        }
      }
    } catch { /* not JSON: the gate reports it */ }
    return { files: [], hosts: [] };
  }
  return { files: [], hosts: [] };
}
