package fhir

import (
	"encoding/json"
	"testing"

	"github.com/phivault/phivault/internal/fhir/spec"
)

func compartmentTypes(t *testing.T) []string {
	t.Helper()
	raw, err := spec.PatientCompartment()
	if err != nil {
		t.Fatal(err)
	}
	var cd struct {
		Resource []struct{ Code string } `json:"resource"`
	}
	if err := json.Unmarshal(raw, &cd); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(cd.Resource))
	for i, r := range cd.Resource {
		out[i] = r.Code
	}
	return out
}
