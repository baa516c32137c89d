// A real client: Go's cloud.google.com/go/compute/metadata and
// golang.org/x/oauth2/google against the metadata server named by
// GCE_METADATA_HOST. Prints project=…, email=…, token=….
package main

import (
	"context"
	"fmt"
	"os"

	"cloud.google.com/go/compute/metadata"
	"golang.org/x/oauth2/google"
)

func main() {
	if !metadata.OnGCE() {
		fail("metadata.OnGCE() is false")
	}
	project, err := metadata.ProjectID()
	if err != nil {
		fail("ProjectID: %v", err)
	}
	email, err := metadata.Email("default")
	if err != nil {
		fail("Email: %v", err)
	}
	creds, err := google.FindDefaultCredentials(context.Background(),
		"https://www.googleapis.com/auth/cloud-platform")
	if err != nil {
		fail("FindDefaultCredentials: %v", err)
	}
	tok, err := creds.TokenSource.Token()
	if err != nil {
		fail("Token: %v", err)
	}
	fmt.Printf("project=%s\nemail=%s\ntoken=%s\n", project, email, tok.AccessToken)
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}
