// deno-lint-ignore-file no-console -- a test client prints what it got
/**
 * A real client: google-auth-library's GoogleAuth discovering the metadata
 * server named by GCE_METADATA_* (as on GCE). Prints `token=…`, `project=…`
 * and `id_token=…` for the audience in argv[0].
 */
import { GoogleAuth } from "google-auth-library";

const audience = Deno.args[0] ?? "https://example.com";
const auth = new GoogleAuth({ scopes: ["https://www.googleapis.com/auth/cloud-platform"] });
console.log(`token=${await auth.getAccessToken()}`);
console.log(`project=${await auth.getProjectId()}`);
const idClient = await auth.getIdTokenClient(audience);
console.log(`id_token=${await idClient.idTokenProvider.fetchIdToken(audience)}`);
