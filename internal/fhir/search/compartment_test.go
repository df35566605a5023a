package search

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/phivault/phivault/internal/fhir"
)

func TestPatientOf(t *testing.T) {
	r := testRegistry(t)
	const pid = "23dc3811-ae4e-fc12-fe61-b4a54b057624"
	for _, name := range []string{"Patient", "Observation", "Condition", "Encounter", "Immunization",
		"DiagnosticReport", "DocumentReference", "Claim", "ExplanationOfBenefit"} {
		id, ok := r.PatientOf(loadResource(t, name))
		if !ok || id != pid {
			t.Errorf("PatientOf(%s) = %q, %v; want %s", name, id, ok, pid)
		}
	}
	for _, name := range []string{"Practitioner", "PractitionerRole", "Organization", "Location"} {
		if id, ok := r.PatientOf(loadResource(t, name)); ok {
			t.Errorf("PatientOf(%s) = %q, want not in a compartment", name, id)
		}
	}
	tests := []struct {
		name, body, want string
		ok               bool
	}{
		{"two patients", `{"resourceType":"Observation","subject":{"reference":"Patient/a"},"performer":[{"reference":"Patient/b"}]}`, "", false},
		{"same patient twice", `{"resourceType":"Observation","subject":{"reference":"Patient/a"},"performer":[{"reference":"https://x.org/fhir/Patient/a/_history/2"}]}`, "a", true},
		{"performer only", `{"resourceType":"Observation","performer":[{"reference":"Practitioner/x"},{"reference":"Patient/c"}]}`, "c", true},
		{"group subject", `{"resourceType":"Observation","subject":{"reference":"Group/g"}}`, "", false},
		{"unresolved urn", `{"resourceType":"Observation","subject":{"reference":"urn:uuid:1234"}}`, "", false},
		{"task for", `{"resourceType":"Task","for":{"reference":"Patient/t"}}`, "t", true},
		{"coverage beneficiary", `{"resourceType":"Coverage","beneficiary":{"reference":"Patient/cv"},"payor":[{"reference":"Organization/o"}]}`, "cv", true},
		{"provenance target", `{"resourceType":"Provenance","target":[{"reference":"Observation/o"},{"reference":"Patient/pv"}]}`, "pv", true},
		{"not in compartment", `{"resourceType":"Medication","id":"m"}`, "", false},
		{"patient without id", `{"resourceType":"Patient"}`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok := r.PatientOf(decode(t, tt.body))
			if id != tt.want || ok != tt.ok {
				t.Errorf("PatientOf = %q, %v; want %q, %v", id, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestAllCompartmentTypesCompile checks that every R4 compartment type
// is handled.
func TestAllCompartmentTypesCompile(t *testing.T) {
	r := testRegistry(t)
	if n := len(r.compartment); n != 66 {
		t.Errorf("%d compartment types besides Patient, want 66", n)
	}
	if !r.InCompartment("Observation") || !r.InCompartment("Patient") || r.InCompartment("Practitioner") {
		t.Error("InCompartment is wrong for Observation, Patient or Practitioner")
	}
}

var urnRef = regexp.MustCompile(`"urn:uuid:[0-9a-f-]+"`)

// TestSyntheaAll extracts every entry of every shared Synthea bundle (with
// urn:uuid references resolved as a transaction would) and checks that
// each clinical resource lands in its bundle's patient compartment.
func TestSyntheaAll(t *testing.T) {
	files, _ := filepath.Glob("../../../../shared/data/synthea/*.json")
	more, _ := filepath.Glob("../../../../shared/data/synthea/incremental/*.json")
	files = append(files, more...)
	if len(files) == 0 {
		t.Skip("shared Synthea data not available")
	}
	r := testRegistry(t)
	var n, terms int
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var b struct {
			Entry []struct {
				FullURL  string          `json:"fullUrl"`
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatal(err)
		}
		refs := map[string]string{}
		var patient string
		for _, e := range b.Entry {
			var h struct{ ResourceType, ID string }
			json.Unmarshal(e.Resource, &h)
			refs[e.FullURL] = h.ResourceType + "/" + h.ID
			if h.ResourceType == "Patient" {
				patient = h.ID
			}
		}
		for _, e := range b.Entry {
			body := urnRef.ReplaceAllStringFunc(string(e.Resource), func(m string) string {
				if to, ok := refs[m[1:len(m)-1]]; ok {
					return `"` + to + `"`
				}
				return m
			})
			res := decode(t, body)
			vals, err := r.Extract(res)
			if err != nil {
				t.Fatalf("%s %s: %v", filepath.Base(f), res.Type(), err)
			}
			n++
			terms += len(Terms(vals))
			id, ok := r.PatientOf(res)
			switch res.Type() {
			case "Practitioner", "PractitionerRole", "Organization", "Location":
				if ok {
					t.Errorf("%s in a patient compartment", res.Type())
				}
			case "Provenance":
				// Synthea's Provenance targets the clinical resources, never
				// the Patient itself: it belongs to no compartment.
			default:
				if !ok || id != patient {
					t.Errorf("%s/%s: PatientOf = %q, %v; want %s", res.Type(), res.ID(), id, ok, patient)
				}
			}
			if !fhir.IsR4Type(res.Type()) {
				t.Errorf("not R4: %s", res.Type())
			}
		}
	}
	t.Logf("%d resources, %d index terms", n, terms)
}
