/**
 * Where this with-prod runs, as told to the gate so the human sees "from
 * build-vm-3 via ssh". Advisory (the gate shows it as stated): it helps a
 * human tell machines apart, it proves nothing.
 */

/** The `host` and `via` fields of a prod request. */
export interface CallerOrigin {
  readonly host?: string;
  readonly via?: "ssh";
}

/**
 * `hostname` is this machine's (a container's hostname unless the container
 * sets one); "via ssh" when with-prod runs in an ssh session (sshd sets
 * SSH_CONNECTION). A container started by a remote Docker host has no such
 * variable: its hostname is what names it.
 */
export function callerOrigin(
  env: Readonly<Record<string, string>>,
  hostname: () => string,
): CallerOrigin {
  let host: string | undefined;
  try {
    host = hostname().slice(0, 253) || undefined;
  } catch {
    host = undefined;
  }
  const viaSsh = (env.SSH_CONNECTION ?? "") !== "" || (env.SSH_CLIENT ?? "") !== "";
  return { ...(host ? { host } : {}), ...(viaSsh ? { via: "ssh" as const } : {}) };
}
