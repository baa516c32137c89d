/**
 * Arguments shaped to make a backtracking pattern rescan a long run from every
 * position (quadratic). Shared by the redaction test and `deno task bench`.
 */

/** Worst shape per pattern, `n` characters long (about). */
export const ADVERSARIAL: Readonly<Record<string, (n: number) => string>> = {
  "name run without =": (n) => "a".repeat(n),
  "name=name=…": (n) => "a=".repeat(n / 2),
  "scheme run": (n) => "a-".repeat(n / 2),
  "scheme:// and no @": (n) => `a://x:${"y".repeat(n)}`,
  "eyJeyJ…": (n) => "eyJ".repeat(n / 3),
  "JWT head then eyJ…": (n) => `eyJa.${"eyJ".repeat(n / 3)}`,
  "unclosed JSON secret": (n) => `"token":"${'\\"'.repeat(n / 2)}`,
  "secret words, then spaces": (n) => `${"password".repeat(n / 8)}${" ".repeat(10)}`,
  "39-character runs": (n) => `${"A".repeat(39)}=`.repeat(n / 40),
  "unfinished PEM": (n) => `-----BEGIN ${"A ".repeat(n / 2)}`,
  "Bearer then spaces": (n) => `Bearer${" ".repeat(n)}`,
};

