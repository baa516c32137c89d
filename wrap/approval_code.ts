/**
 * The confirmation code with-prod shows its user before asking for approval.
 * Any process in the container can read with-prod's argv from /proc and send
 * the same request first; the code is what it cannot copy: it exists only in
 * with-prod's memory and on the user's terminal until the request is sent,
 * and every approval method on the host shows it next to the request.
 */
import { APPROVAL_CODE_ALPHABET } from "../shared/protocol.ts";

/** Bytes at or above this are rejected, so every character is equally likely. */
const UNBIASED_LIMIT = 256 - (256 % APPROVAL_CODE_ALPHABET.length);

/** Dependencies of {@linkcode createApprovalCode}. */
export interface ApprovalCodeDeps {
  /** Fills `buf` with random bytes (default: crypto.getRandomValues). */
  random: (buf: Uint8Array) => void;
}

const REAL: ApprovalCodeDeps = { random: (buf) => void crypto.getRandomValues(buf) };

/** A fresh code like `K7P-QX2` (6 random characters of APPROVAL_CODE_ALPHABET). */
export function createApprovalCode(deps: ApprovalCodeDeps = REAL): string {
  const chars: string[] = [];
  const buf = new Uint8Array(16);
  while (chars.length < 6) {
    deps.random(buf);
    for (const b of buf) {
      if (b < UNBIASED_LIMIT && chars.length < 6) {
        chars.push(APPROVAL_CODE_ALPHABET[b % APPROVAL_CODE_ALPHABET.length]!);
      }
    }
  }
  return `${chars.slice(0, 3).join("")}-${chars.slice(3).join("")}`;
}
