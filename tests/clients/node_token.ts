// deno-lint-ignore-file no-console -- a test client prints what it got
/**
 * A real client: google-auth-library's GoogleAuth, discovering credentials the
 * way it does on GCE (the metadata server named by GCE_METADATA_*).
 * Prints `token=<token>` on success.
 */
import { GoogleAuth } from "google-auth-library";

const auth = new GoogleAuth({ scopes: ["https://www.googleapis.com/auth/cloud-platform"] });
const token = await auth.getAccessToken();
console.log(`token=${token}`);
