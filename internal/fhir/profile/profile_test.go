package profile

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/fhir/terminology"
)

const data = "../terminology/testdata/r4/"

// store serves the R4 example profiles and value sets in testdata.
type store struct {
	defs   map[string]*Definition
	cs     map[string]*terminology.CodeSystem
	vs     map[string]*terminology.ValueSet
	hidden map[string]bool
}

func load(t testing.TB) *store {
	t.Helper()
	s := &store{defs: map[string]*Definition{}, cs: map[string]*terminology.CodeSystem{}, vs: map[string]*terminology.ValueSet{}, hidden: map[string]bool{}}
	files, _ := filepath.Glob(data + "*.json")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		switch base := filepath.Base(f); {
		case strings.HasPrefix(base, "StructureDefinition-"):
			d, err := Parse(b)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			s.defs[d.URL] = d
		case strings.HasPrefix(base, "CodeSystem-"):
			c, err := terminology.ParseCodeSystem(b)
			if err != nil {
				t.Fatal(err)
			}
			s.cs[c.URL] = c
		case strings.HasPrefix(base, "ValueSet-"):
			v, err := terminology.ParseValueSet(b)
			if err != nil {
				t.Fatal(err)
			}
			s.vs[v.URL] = v
		}
	}
	return s
}

func (s *store) StructureDefinition(_ context.Context, url, _ string) (*Definition, error) {
	if d := s.defs[url]; d != nil && !s.hidden[url] {
		return d, nil
	}
	return nil, ErrNotFound
}

func (s *store) CodeSystem(_ context.Context, url, _ string) (*terminology.CodeSystem, error) {
	if c := s.cs[url]; c != nil && !s.hidden[url] {
		return c, nil
	}
	return nil, terminology.ErrNotFound
}

func (s *store) ValueSet(_ context.Context, url, version string) (*terminology.ValueSet, error) {
	if v := s.vs[url]; v != nil && !s.hidden[url] && (version == "" || version == v.Version) {
		return v, nil
	}
	return nil, terminology.ErrNotFound
}

func (s *store) InValueSet(ctx context.Context, canonical string, c terminology.Coding) (bool, error) {
	u, ver := terminology.SplitCanonical(canonical)
	vs, err := s.ValueSet(ctx, u, ver)
	if err != nil {
		return false, ErrNotFound
	}
	v, err := terminology.ValidateInValueSet(ctx, s, vs, c)
	return v.Result, err
}

func resource(t *testing.T, name string, edit func(fhir.Resource)) fhir.Resource {
	t.Helper()
	b, err := os.ReadFile(data + name)
	if err != nil {
		t.Fatal(err)
	}
	r, err := fhir.Decode(bytes.NewReader(b), fhir.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(r)
	}
	return r
}

type want struct{ sev, code, path string }

func errorsOf(is []Issue) []want {
	var out []want
	for _, i := range is {
		if i.Severity != "information" {
			out = append(out, want{i.Severity, i.Code, i.Path})
		}
	}
	return out
}

const (
	heartrate   = "http://hl7.org/fhir/StructureDefinition/heartrate"
	vitalsigns  = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
	lipidprofil = "http://hl7.org/fhir/StructureDefinition/lipidprofile"
)

func TestHeartRateProfile(t *testing.T) {
	s := load(t)
	v := Validator{Defs: s, Codes: s}
	tests := []struct {
		name string
		edit func(fhir.Resource)
		want []want
	}{
		{"the R4 example conforms", nil, nil},
		{"missing effective[x]", func(r fhir.Resource) { delete(r, "effectiveDateTime") },
			[]want{{"error", "required", "Observation.effective[x]"}}},
		{"effective of a type the profile forbids", func(r fhir.Resource) {
			r["effectiveInstant"] = r["effectiveDateTime"]
			delete(r, "effectiveDateTime")
		}, []want{{"error", "structure", "Observation.effectiveInstant"}}},
		{"unit code not the fixed one", func(r fhir.Resource) { r["valueQuantity"].(map[string]any)["code"] = "/s" },
			[]want{{"error", "value", "Observation.valueQuantity.code"}}},
		{"missing quantity value", func(r fhir.Resource) { delete(r["valueQuantity"].(map[string]any), "value") },
			[]want{{"error", "required", "Observation.valueQuantity.value"}}},
		{"status outside its required value set", func(r fhir.Resource) { r["status"] = "bogus" },
			[]want{{"error", "code-invalid", "Observation.status"}}},
		{"subject of a type the profile forbids", func(r fhir.Resource) { r["subject"] = map[string]any{"reference": "Group/g1"} },
			[]want{{"error", "structure", "Observation.subject.reference"}}},
		{"no category", func(r fhir.Resource) { delete(r, "category") },
			[]want{{"error", "required", "Observation.category"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := resource(t, "Observation-heart-rate.json", tt.edit)
			is, err := v.Validate(t.Context(), r, heartrate, true)
			if err != nil {
				t.Fatal(err)
			}
			if got := errorsOf(is); !slices.Equal(got, tt.want) {
				t.Fatalf("issues = %+v, want %+v", is, tt.want)
			}
			for _, i := range is {
				for _, leak := range []string{"bogus", "/s", "g1", "8867-4", "unitsofmeasure"} {
					if strings.Contains(i.Message, leak) {
						t.Fatalf("message echoes a value: %q", i.Message)
					}
				}
			}
		})
	}
}

func TestLipidProfile(t *testing.T) {
	s := load(t)
	v := Validator{Defs: s, Codes: s}
	base := func() fhir.Resource {
		r := fhir.Resource{"resourceType": "DiagnosticReport", "status": "final",
			"code":   map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "57698-3", "display": "Lipid panel with direct LDL - Serum or Plasma"}}},
			"result": []any{map[string]any{"reference": "Observation/a"}, map[string]any{"reference": "Observation/b"}, map[string]any{"reference": "Observation/c"}}}
		return r
	}
	is, err := v.Validate(t.Context(), base(), lipidprofil, true)
	if err != nil || len(errorsOf(is)) != 0 {
		t.Fatalf("conforming report: %+v %v", is, err)
	}
	r := base()
	r["code"] = map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "24331-1"}}}
	r["result"] = r["result"].([]any)[:2]
	r["conclusionCode"] = []any{map[string]any{"text": "x"}}
	is, err = v.Validate(t.Context(), r, lipidprofil, true)
	if err != nil {
		t.Fatal(err)
	}
	got := errorsOf(is)
	slices.SortFunc(got, func(a, b want) int { return strings.Compare(a.path, b.path) })
	wantIs := []want{
		{"error", "value", "DiagnosticReport.code"},
		{"error", "structure", "DiagnosticReport.conclusionCode"},
		{"error", "required", "DiagnosticReport.result"},
	}
	if !slices.Equal(got, wantIs) {
		t.Fatalf("issues = %+v, want %+v", got, wantIs)
	}
}

func TestProfileAvailability(t *testing.T) {
	s := load(t)
	v := Validator{Defs: s, Codes: s}
	r := resource(t, "Observation-heart-rate.json", func(r fhir.Resource) { r["status"] = "bogus" })
	// A profile named by the client that is not available is an error;
	// one in meta.profile a warning.
	for _, explicit := range []bool{true, false} {
		is, err := v.Validate(t.Context(), r, "http://example.org/StructureDefinition/none", explicit)
		if err != nil || len(is) != 1 || is[0].Code != "not-found" || (is[0].Severity == "error") != explicit {
			t.Fatalf("explicit=%v: %+v %v", explicit, is, err)
		}
	}
	// A hidden base profile: its constraints are not checked, and that
	// is said.
	s.hidden[vitalsigns] = true
	is, _ := v.Validate(t.Context(), r, heartrate, true)
	if got := errorsOf(is); !slices.Equal(got, []want{{"warning", "not-found", "Observation"}}) {
		t.Fatalf("hidden base: %+v", is)
	}
	// A hidden value set: the binding is not checked (information), not
	// failed.
	s.hidden = map[string]bool{"http://hl7.org/fhir/ValueSet/observation-status": true}
	is, _ = v.Validate(t.Context(), r, vitalsigns, true)
	if got := errorsOf(is); len(got) != 0 {
		t.Fatalf("hidden value set: %+v", is)
	}
	found := false
	for _, i := range is {
		found = found || (i.Code == "not-found" && i.Path == "Observation.status")
	}
	if !found {
		t.Fatalf("no information issue for the unavailable value set: %+v", is)
	}
	// A profile for another type.
	is, _ = v.Validate(t.Context(), fhir.Resource{"resourceType": "Patient"}, vitalsigns, true)
	if len(is) != 1 || is[0].Code != "invalid" {
		t.Fatalf("other type: %+v", is)
	}
}

func TestParseRefuses(t *testing.T) {
	for name, body := range map[string]string{
		"not a profile": `{"resourceType":"ValueSet"}`,
		"no type":       `{"resourceType":"StructureDefinition"}`,
		"not JSON":      `[`,
	} {
		if _, err := Parse([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	var sb strings.Builder
	sb.WriteString(`{"resourceType":"StructureDefinition","type":"Patient","differential":{"element":[`)
	for i := range MaxElements + 1 {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString(`{"path":"Patient.name"}`)
	}
	sb.WriteString(`]}}`)
	if _, err := Parse([]byte(sb.String())); err == nil {
		t.Error("too many elements accepted")
	}
}
