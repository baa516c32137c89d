import type { CliSpec } from "../shared/config.ts";

/** gcp-kube-setup's command line. */
export const KUBE_SETUP_CLI: CliSpec = {
  role: "gcp-kube-setup",
  summary: "point kubeconfig users of gke-gcloud-auth-plugin at gcp-kube-token",
  usage: ["[--kubeconfig <file>] [--dry-run | --revert]"],
  extras: {
    "dry-run": { type: "boolean", help: "print a unified diff and change nothing" },
    revert: { type: "boolean", help: "restore the gke-gcloud-auth-plugin entries" },
  },
  loadsConfig: true,
};
