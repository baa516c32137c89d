"""A real client: Python google-auth discovering the metadata server named by
GCE_METADATA_* (as on GCE). Works with Debian's 1.5.1 and gcloud's bundled 2.x.
Prints token=…, project=…, email=…, and with --id-token AUDIENCE, id_token=…
"""
import sys

import google.auth
import google.auth.transport.requests
from google.auth import compute_engine

request = google.auth.transport.requests.Request()
credentials, project = google.auth.default(
    scopes=["https://www.googleapis.com/auth/cloud-platform"]
)
if not isinstance(credentials, compute_engine.Credentials):
    sys.exit("expected compute_engine credentials, got %s" % type(credentials).__name__)
credentials.refresh(request)
print("token=%s" % credentials.token)
print("project=%s" % project)
print("email=%s" % credentials.service_account_email)
if len(sys.argv) > 2 and sys.argv[1] == "--id-token":
    id_creds = compute_engine.IDTokenCredentials(
        request, sys.argv[2], use_metadata_identity_endpoint=True
    )
    id_creds.refresh(request)
    print("id_token=%s" % id_creds.token)
