/**
 * The request reason Google records in Cloud Audit Logs
 * (`requestMetadata.requestAttributes.reason`) for calls made for one prod
 * approval: the gate sends it as `X-Goog-Request-Reason`, with-prod hands it
 * to gcloud (and the clients that read the same variable) as
 * `CLOUDSDK_CORE_REQUEST_REASON`. It names the approval id, which the local
 * audit log also holds, so a reviewer can link both.
 */
import { stripUnsafeChars } from "../shared/redact.ts";

/** Longest request reason sent (a header; Google keeps what it needs). */
export const MAX_REQUEST_REASON = 200;

/** Printable ASCII only: a header value must be Latin-1, and logs read it anyway. */
function ascii(text: string): string {
  return stripUnsafeChars(text).replace(/[^\x20-\x7e]/g, "?").replace(/\s+/g, " ").trim();
}

/** `gcp-gate approval 1a2b3c4d: <reason>`, printable ASCII, capped. */
export function requestReasonFor(approvalId: string, reason: string | undefined): string {
  const text = ascii(`gcp-gate approval ${approvalId}${reason ? `: ${reason}` : ""}`);
  return text.length > MAX_REQUEST_REASON ? `${text.slice(0, MAX_REQUEST_REASON - 3)}...` : text;
}
