/** Running with-prod against a test gate whose approvals go to the queue. */
import { approveNext, baseEnv, type RunningProcess, type Stack, start } from "./_utils.ts";

/** with-prod's environment: the stack's home and config, plus `extra`. */
export function wrapEnv(stack: Stack, extra: Record<string, string> = {}): Record<string, string> {
  return baseEnv(stack.home, { GCP_GATE_CONFIG: stack.configPath, ...extra });
}

/** Starts `with-prod <args>` and approves its request; on failure, its output is in the error. */
export async function startApproved(
  stack: Stack,
  args: string[],
  env: Record<string, string> = wrapEnv(stack),
): Promise<RunningProcess> {
  const p = await start("with-prod", args, { env });
  try {
    await approveNext(stack);
  } catch (err) {
    await p[Symbol.asyncDispose]();
    throw new Error(`${(err as Error).message}\nwith-prod output:\n${p.output()}`);
  }
  return p;
}
