package profile

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/fhir/terminology"
)

// FuzzProfile parses a body as a StructureDefinition (profiles are
// written by users) and validates the R4 heart-rate example against it:
// no panic, bounded issues.
func FuzzProfile(f *testing.F) {
	for _, n := range []string{"StructureDefinition-heartrate.json", "StructureDefinition-lipidprofile.json"} {
		if b, err := os.ReadFile(data + n); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"resourceType":"StructureDefinition","type":"Observation","url":"urn:p","differential":{"element":[{"path":"Observation.value[x]","min":1,"max":"0","type":[{"code":"string"}],"patternCodeableConcept":{"coding":[{"code":"x"}]}}]}}`))
	obsBody, err := os.ReadFile(data + "Observation-heart-rate.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := Parse(body)
		if err != nil {
			return
		}
		d.Type, d.BaseDefinition = "Observation", ""
		obs, err := fhir.Decode(bytes.NewReader(obsBody), fhir.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		s := &store{defs: map[string]*Definition{"urn:fuzz": d}, hidden: map[string]bool{}}
		is, err := Validator{Defs: s, Codes: noCodes{}}.Validate(t.Context(), obs, "urn:fuzz", true)
		if err != nil {
			t.Fatal(err)
		}
		if len(is) > MaxIssues {
			t.Fatalf("%d issues", len(is))
		}
	})
}

type noCodes struct{}

func (noCodes) InValueSet(context.Context, string, terminology.Coding) (bool, error) {
	return false, ErrNotFound
}
