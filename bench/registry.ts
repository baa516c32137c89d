/** Every benchmark, by name. Add one line per benchmark module. */
import type { Bench } from "./_bench.ts";
import { auditVerify } from "./audit.ts";
import { benchConnectStorm } from "./connect_storm.ts";
import { benchFairness } from "./fairness.ts";
import { benchGate } from "./gate.ts";
import { kubeTokenStartup } from "./kube.ts";
import { leaseLoss } from "./lease.ts";
import { benchMemory, benchStartup, benchThroughput } from "./proxy.ts";
import { benchRemote } from "./remote.ts";
import { benchRedaction } from "./redact.ts";
import { wrapProxyThroughput, wrapTrueOverhead } from "./wrap.ts";
import { wrapNewConnection } from "./wrap_connect.ts";

export const BENCHES: Record<string, Bench> = {
  "audit.verify": auditVerify,
  "gate.token": benchGate,
  "gate.lease_loss": leaseLoss,
  "gate.fairness": benchFairness,
  "gate.connect_storm": benchConnectStorm,
  "kube.token_startup": kubeTokenStartup,
  "proxy.throughput": benchThroughput,
  "proxy.startup": benchStartup,
  "proxy.memory": benchMemory,
  "remote.ssh_forward": benchRemote,
  "redact.hostile_body": benchRedaction,
  "wrap.proxy_throughput": wrapProxyThroughput,
  "wrap.true_overhead": wrapTrueOverhead,
  "wrap.new_connection": wrapNewConnection,
};
