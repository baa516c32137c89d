/**
 * A Worker that asks one gate socket for its cached dev token in a loop and
 * reports each latency: the measuring client runs on its own thread, so the
 * flood the test itself drives does not delay it.
 */
import { createGateClient } from "../shared/gate_client.ts";

interface Start {
  socketPath: string;
  clients: number;
}

let stop = false;
const self = globalThis as unknown as {
  onmessage: (e: MessageEvent<Start | "stop">) => void;
  postMessage: (m: unknown) => void;
};

self.onmessage = async (e) => {
  if (e.data === "stop") {
    stop = true;
    return;
  }
  const gate = createGateClient({ socketPath: e.data.socketPath, timeoutMs: 5000 });
  const latencies: number[] = [];
  const tokens = new Set<string>();
  let failures = 0;
  tokens.add((await gate.token()).access_token);
  self.postMessage("ready");
  await Promise.all(Array.from({ length: e.data.clients }, async () => {
    while (!stop) {
      const t0 = performance.now();
      try {
        tokens.add((await gate.token()).access_token);
        latencies.push(performance.now() - t0);
      } catch {
        failures++;
      }
    }
  }));
  self.postMessage({ latencies, tokens: tokens.size, failures });
};
