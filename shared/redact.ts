/**
 * Redaction of secrets from free text. Used by the logger (so no call site can
 * forget it) and by error sanitising. Patterns are deliberately broad: a false
 * positive costs a log line's readability, a false negative leaks a credential.
 */

// A JWT: `eyJ<header>.<payload>.<signature>`. The two dotted parts are
// optional in the pattern and checked in the replacer, so a run that is not a
// JWT is consumed once instead of being rescanned from every `eyJ` inside it
// (quadratic on hostile input such as "eyJeyJeyJ…"). Every pattern here runs
// on container input and must stay linear.
const JWT = /eyJ[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*)?/g;

const SECRET_PATTERNS: readonly RegExp[] = [
  // OAuth2 access tokens (ya29.…), refresh tokens (1//…), JWTs (eyJ….….…)
  /ya29\.[A-Za-z0-9_\-.]+/g,
  /\b1\/\/[A-Za-z0-9_\-]{10,}/g,
  JWT,
  // PEM private keys
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g,
  // Bearer <anything>
  /\b(Bearer)\s+[A-Za-z0-9_\-.~+/=]+/gi,
];

/** Field names whose values are never logged. */
const SECRET_KEY =
  /(token|secret|password|passwd|private_key|assertion|credential|authorization|api_key|apikey|session_id)$/i;

/** Replaces anything that looks like a credential in `text`. */
export function redactText(text: string): string {
  let out = text;
  for (const pattern of SECRET_PATTERNS) {
    out = out.replace(pattern, (m: string, p1: unknown) => {
      if (pattern === JWT && !m.includes(".")) return m;
      return p1 === "Bearer" || p1 === "bearer" ? `${p1} [REDACTED]` : "[REDACTED]";
    });
  }
  return out;
}

/** True when a field called `key` must never have its value logged. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** Deep copy of `value` with secret fields and secret-looking strings redacted. */
export function redactValue(value: unknown, depth = 0): unknown {
  if (depth > 6) return "[…]";
  if (typeof value === "string") return redactText(value);
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  if (value instanceof Error) return redactText(value.message);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = isSecretKey(k) && v !== undefined && v !== null
        ? "[REDACTED]"
        : redactValue(v, depth + 1);
    }
    return out;
  }
  return value;
}

// C0/C1 controls and the Unicode bidi overrides/isolates: stripped from
// anything a peer sends that a human or a terminal will later read.
// Every control (Cc) and format (Cf: bidi marks and overrides, zero-width
// characters, BOM) character, and the line and paragraph separators, which
// dialogs render as real line breaks (a forged "Project:" line).
const UNSAFE_CHARS = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;

/** Strips control, format and line-separator characters (keeps \t and \n only when `multiline`). */
export function stripUnsafeChars(text: string, multiline = false): string {
  return text.replace(
    UNSAFE_CHARS,
    (c) => c === "\t" || c === "\n" ? (multiline ? c : " ") : "",
  );
}

/** Makes a peer-supplied message safe to show: redacted, one line, capped. */
export function sanitizeMessage(text: string, maxLength = 500): string {
  const clean = stripUnsafeChars(redactText(text)).trim();
  return clean.length > maxLength ? `${clean.slice(0, maxLength - 1)}…` : clean;
}
