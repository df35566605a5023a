package httpapi_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
)

// FuzzBundle posts arbitrary bytes to the FHIR base, where batch and
// transaction Bundles go, on one SQLite server per fuzzing process. Every
// answer must be a client error, a success or 503 (with an
// OperationOutcome for errors); a 5xx otherwise means a panic (recovered
// into a 500) or an unhandled error.
func FuzzBundle(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "bundles", "*.json"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seed bundles in testdata/bundles (%v)", err)
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	s := apitest.Start(f, "sqlite")
	f.Fuzz(func(t *testing.T, body []byte) {
		r := s.Do(t, http.MethodPost, "/fhir", body, nil)
		if r.Status >= 500 && r.Status != http.StatusServiceUnavailable {
			t.Fatalf("POST /fhir answered %s", r)
		}
		if r.Status >= 400 && r.JSON["resourceType"] != "OperationOutcome" {
			t.Fatalf("an error without an OperationOutcome: %s", r)
		}
		if r.Status == http.StatusOK && r.JSON["resourceType"] != "Bundle" {
			t.Fatalf("a success without a response Bundle: %s", r)
		}
	})
}
