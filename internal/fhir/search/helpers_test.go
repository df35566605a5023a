package search

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/phivault/phivault/internal/fhir"
)

var (
	regOnce sync.Once
	reg     *Registry
	regErr  error
)

// testRegistry returns one Registry shared by the package's tests.
func testRegistry(t testing.TB) *Registry {
	t.Helper()
	regOnce.Do(func() { reg, regErr = New() })
	if regErr != nil {
		t.Fatal(regErr)
	}
	return reg
}

// loadResource reads ../testdata/<name>.json (Synthea resources with
// resolved references; see ../testdata/NOTICE).
func loadResource(t testing.TB, name string) fhir.Resource {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := fhir.Decode(bytes.NewReader(b), fhir.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func decode(t testing.TB, body string) fhir.Resource {
	t.Helper()
	res, err := fhir.Decode(bytes.NewReader([]byte(body)), fhir.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func readFile(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("..", "testdata", name+".json"))
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func containsValue(msg, v string) bool { return bytes.Contains([]byte(msg), []byte(v)) }

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func decodeMaybe(body string) (fhir.Resource, error) {
	return fhir.Decode(bytes.NewReader([]byte(body)), fhir.Limits{})
}

func errTooLargeSentinel() error { return fhir.ErrTooLarge }
