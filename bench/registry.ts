/** Every benchmark, by name. Add one line per benchmark module. */
import type { Bench } from "./_bench.ts";
import { benchGate } from "./gate.ts";
import { kubeTokenStartup } from "./kube.ts";
import { leaseLoss } from "./lease.ts";
import { benchMemory, benchStartup, benchThroughput } from "./proxy.ts";
import { wrapProxyThroughput, wrapTrueOverhead } from "./wrap.ts";

export const BENCHES: Record<string, Bench> = {
  "gate.token": benchGate,
  "gate.lease_loss": leaseLoss,
  "kube.token_startup": kubeTokenStartup,
  "proxy.throughput": benchThroughput,
  "proxy.startup": benchStartup,
  "proxy.memory": benchMemory,
  "wrap.proxy_throughput": wrapProxyThroughput,
  "wrap.true_overhead": wrapTrueOverhead,
};
