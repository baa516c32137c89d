/**
 * `gcp-gate doctor` with profiles: the per-profile checks run once for each
 * profile, and a named profile's results carry its name. The implicit profile
 * of a config without profiles reports exactly as before profiles existed.
 * Calls to Google that several profiles need (an account, an entitlement)
 * are made once, and bounded (see Memo).
 */
import type { CheckResult } from "../shared/doctor_report.ts";
import { isGateError } from "../shared/errors.ts";
import type { Config, ProfileKey } from "../shared/config.ts";
import type { Profile } from "./profiles.ts";

/** What one call to Google came to: a value (never a token), or its error. */
export type Answer<T> = { readonly value: T } | { readonly error: unknown };

/** One call per distinct key; with profiles, no further calls after one without a verdict. */
export interface Memo<T> {
  readonly answers: Map<string, Promise<Answer<T>>>;
  /**
   * Whether a call without a verdict stops the later ones. Only with
   * profiles (up to 64, two accounts each): without, there are at most two
   * accounts and the report stays exactly what it was before profiles.
   */
  readonly stopOnSilence: boolean;
  /** The first key whose call got no verdict from Google (a timeout, 5xx, 429 …). */
  unanswered?: string;
}

/** A 403 or 404 is Google's verdict on the account; anything else says nothing about it. */
function isVerdict(err: unknown): boolean {
  return isGateError(err) && (err.status === 403 || err.status === 404);
}

/** Calls `f` for `key` once; undefined when an earlier call of `memo` got no answer. */
export async function once<T>(
  memo: Memo<T>,
  key: string,
  f: () => Promise<T>,
): Promise<Answer<T> | undefined> {
  const known = memo.answers.get(key);
  if (known) return await known;
  if (memo.stopOnSilence && memo.unanswered !== undefined) return undefined;
  const answer = f().then((value): Answer<T> => ({ value }), (error): Answer<T> => {
    if (!isVerdict(error)) memo.unanswered ??= key;
    return { error };
  });
  memo.answers.set(key, answer);
  return await answer;
}

/** A named profile's result names it, in the message and as `profile` (for --json). */
export function inProfile(p: Pick<Profile, "name" | "named">, r: CheckResult): CheckResult {
  return p.named ? { ...r, message: `profile ${p.name}: ${r.message}`, profile: p.name } : r;
}

/** Runs `check` for each profile in turn (report order), one result each. */
export async function eachProfile<P extends Pick<Profile, "name" | "named">>(
  profiles: readonly P[],
  check: (p: P) => CheckResult | Promise<CheckResult>,
): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const p of profiles) out.push(inProfile(p, await check(p)));
  return out;
}

/** Where `key` of profile `p` is set: its table when it sets it, else the file's top level. */
export function keyLocation(
  config: Pick<Config, "config_path" | "profiles">,
  p: Pick<Profile, "name" | "named">,
  key: ProfileKey,
): string {
  const file = config.config_path ?? "your config";
  if (!p.named) return file;
  const own = config.profiles.find((t) => t.name === p.name)?.values[key] !== undefined;
  return own
    ? `[profiles.${p.name}] in ${file}`
    : `${file} (top level, inherited by [profiles.${p.name}])`;
}
