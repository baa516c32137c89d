/** Every benchmark, by name. Add one line per benchmark module. */
import type { Bench } from "./_bench.ts";

export const BENCHES: Record<string, Bench> = {};
