/** Test support: every endpoint on its own fake host, so a test sees which API a call went to. */
import type { Endpoints } from "../shared/config.ts";

export const TEST_ENDPOINTS: Endpoints = Object.freeze({
  oauth2: "https://o.test",
  iamcredentials: "https://ic.test",
  cloudresourcemanager: "https://crm.test",
  sts: "https://sts.test",
  iam: "https://iam.test",
  storage: "https://gcs.test",
  pubsub: "https://ps.test",
  bigquery: "https://bq.test",
  privilegedaccessmanager: "https://pam.test",
});
