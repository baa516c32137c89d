/** The release version. `scripts/build.ts` replaces the commit placeholder in bundles. */
export const VERSION = "0.1.0";

/** Git commit baked in at build time ("dev" when run from source). */
export const COMMIT: string = "__GCP_GATE_COMMIT__".startsWith("__")
  ? "dev"
  : "__GCP_GATE_COMMIT__";

/** `0.1.0 (abc1234)`. */
export function versionString(): string {
  return `${VERSION} (${COMMIT})`;
}
