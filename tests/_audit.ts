/** Reading a test gate's audit log (JSON lines, flushed asynchronously: callers poll). */
import type { Stack } from "./_utils.ts";

/** The audit log's lines so far, parsed; none while the file does not exist yet. */
export function readAudit<T = Record<string, unknown>>(stack: Pick<Stack, "home">): T[] {
  try {
    return Deno.readTextFileSync(`${stack.home}/.local/state/gcp-gate/audit.log`)
      .split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as T);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}
