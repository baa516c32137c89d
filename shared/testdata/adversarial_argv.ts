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
  "scheme://user: runs, no @": (n) => "a://x:".repeat(n / 6),
  "scheme://user: then @ runs": (n) => `a://x:${"/@".repeat(n / 2)}`,
  "scheme://user:@ repeated": (n) => "a://x:@".repeat(n / 7),
  "URL passwords split by ?": (n) => "a://x:y@?".repeat(n / 9),
  "URL runs split by ?, no @": (n) => "a://x:?".repeat(n / 7),
  "port-like password runs": (n) => `a://x:${"1/".repeat(n / 2)}@`,
  "attached -p, then colons": (n) => `-p${":".repeat(n)}`,
  "-u user: then colons": (n) => `-uadmin${":".repeat(n)}`,
};

/**
 * Commands whose program has secret flags (shared/argv_programs.ts): every
 * shape above is also redacted after each of these, so the program rules see it.
 */
export const ADVERSARIAL_PREFIXES: readonly (readonly string[])[] = [
  ["curl", "-u"],
  ["sudo", "-u", "root", "docker", "login", "-p"],
  ["env", "A=1", "mysql"],
  ["tool", "--password"],
];

