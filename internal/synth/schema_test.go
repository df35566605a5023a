package synth

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaPath is the official FHIR R4 JSON schema in the shared data folder.
const schemaPath = "../../../shared/data/fhir-r4/fhir.schema.json"

// TestGenerateValidatesAgainstFHIRSchema validates every generated resource
// against its own definition (#/definitions/<Type>), and one whole bundle
// against #/definitions/Bundle.
func TestGenerateValidatesAgainstFHIRSchema(t *testing.T) {
	f, err := os.Open(schemaPath)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("FHIR R4 schema not found at %s: schema validation skipped", schemaPath)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("reading schema: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("fhir.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	schemas := map[string]*jsonschema.Schema{}
	schemaFor := func(typ string) *jsonschema.Schema {
		s, ok := schemas[typ]
		if !ok {
			s, err = c.Compile("fhir.schema.json#/definitions/" + typ)
			if err != nil {
				t.Fatalf("compiling %s: %v", typ, err)
			}
			schemas[typ] = s
		}
		return s
	}

	_, bundles := collect(t, Options{Patients: 20, Seed: 5, Start: testStart})
	seen := map[string]int{}
	for i, b := range bundles {
		tb := parseBundle(t, b)
		for _, e := range tb.Entry {
			var head struct{ ResourceType string }
			if err := json.Unmarshal(e.Resource, &head); err != nil {
				t.Fatal(err)
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(e.Resource))
			if err != nil {
				t.Fatal(err)
			}
			if err := schemaFor(head.ResourceType).Validate(inst); err != nil {
				if seen[head.ResourceType+"!"] == 0 {
					t.Errorf("bundle %d: %s is not valid FHIR R4: %v", i, head.ResourceType, err)
				}
				seen[head.ResourceType+"!"]++
			}
			seen[head.ResourceType]++
		}
	}
	// The bundle envelope itself (slow: resources go through a oneOf).
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(bundles[1]))
	if err != nil {
		t.Fatal(err)
	}
	if err := schemaFor("Bundle").Validate(inst); err != nil {
		t.Errorf("patient bundle is not a valid R4 Bundle: %v", err)
	}
	t.Logf("validated: %v", seen)

	// The check can fail: a bad code and an unknown element are rejected.
	for _, bad := range []string{
		`{"resourceType":"Patient","gender":"robot"}`,
		`{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":"7"}}`,
		`{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"colour":"red"}`,
	} {
		inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(bad)))
		var head struct{ ResourceType string }
		_ = json.Unmarshal([]byte(bad), &head)
		if schemaFor(head.ResourceType).Validate(inst) == nil {
			t.Errorf("schema accepted invalid %s", bad)
		}
	}
}
