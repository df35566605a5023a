package terminology

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// dirSource serves the R4 examples in testdata/r4 (a stand-in for what
// a user may read), minus the urls in hidden.
type dirSource struct {
	cs     map[string]*CodeSystem
	vs     map[string]*ValueSet
	hidden map[string]bool
}

func loadSource(t testing.TB) *dirSource {
	t.Helper()
	src := &dirSource{cs: map[string]*CodeSystem{}, vs: map[string]*ValueSet{}, hidden: map[string]bool{}}
	files, err := filepath.Glob("testdata/r4/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test data: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.Contains(f, "CodeSystem-"):
			cs, err := ParseCodeSystem(b)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			src.cs[cs.URL] = cs
		case strings.Contains(f, "ValueSet-"):
			vs, err := ParseValueSet(b)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			src.vs[vs.URL] = vs
		}
	}
	return src
}

func (d *dirSource) CodeSystem(_ context.Context, url, version string) (*CodeSystem, error) {
	cs := d.cs[url]
	if cs == nil || d.hidden[url] || (version != "" && cs.Version != version) {
		return nil, fail(ErrNotFound, "no code system")
	}
	return cs, nil
}

func (d *dirSource) ValueSet(_ context.Context, url, version string) (*ValueSet, error) {
	vs := d.vs[url]
	if vs == nil || d.hidden[url] || (version != "" && vs.Version != version) {
		return nil, fail(ErrNotFound, "no value set")
	}
	return vs, nil
}

func codesOf(e *Expansion) []string {
	var out []string
	for _, c := range e.Codes {
		out = append(out, c.Code)
	}
	return out
}

const actMood = "http://terminology.hl7.org/CodeSystem/v3-ActMood"

func TestExpandR4ValueSets(t *testing.T) {
	src := loadSource(t)
	predicate := []string{"CRT", "EVN.CRT", "GOL.CRT", "INT.CRT", "PRMS.CRT", "RQO.CRT", "RSK.CRT", "EXPEC", "GOL", "RSK", "OPT"}
	tests := []struct {
		name string
		url  string
		opt  ExpandOptions
		want []string // in any order
	}{
		// is-a _ActMoodPredicate, minus the excluded _ActMoodPredicate.
		{"is-a with exclude", "http://terminology.hl7.org/ValueSet/v3-ActMoodPredicate", ExpandOptions{}, predicate},
		// descendent-of never includes the code itself.
		{"descendent-of", "http://hl7.org/fhir/ValueSet/inactive", ExpandOptions{}, predicate},
		// The whole of a stored code system, nested concepts included.
		{"whole system", "http://hl7.org/fhir/ValueSet/condition-clinical", ExpandOptions{},
			[]string{"active", "recurrence", "relapse", "inactive", "remission", "resolved"}},
		// is-not-a O over a flat system: everything but O.
		{"is-not-a", "http://hl7.org/fhir/ValueSet/patient-contactrelationship", ExpandOptions{},
			[]string{"BP", "C", "CP", "E", "EP", "F", "I", "N", "PR", "S", "U"}},
		// An imported value set plus an enumerated nested code; the R4
		// example's own stored expansion says Y, N, asked-unknown.
		{"import and concept list", "http://hl7.org/fhir/ValueSet/yesnodontknow", ExpandOptions{}, []string{"Y", "N", "asked-unknown"}},
		// = on a property no concept carries: nothing.
		{"= on a property", "http://hl7.org/fhir/ValueSet/example-filter", ExpandOptions{}, nil},
		{"text filter", "http://hl7.org/fhir/ValueSet/condition-clinical", ExpandOptions{Filter: "RE"},
			[]string{"recurrence", "relapse", "remission", "resolved"}},
		{"paging", "http://hl7.org/fhir/ValueSet/condition-clinical", ExpandOptions{Offset: 2, Count: 2}, []string{"relapse", "inactive"}},
		{"offset past the end", "http://hl7.org/fhir/ValueSet/condition-clinical", ExpandOptions{Offset: 50}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Expand(t.Context(), src, src.vs[tt.url], tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			got := codesOf(e)
			if tt.opt.Count > 0 {
				if !slices.Equal(got, tt.want) {
					t.Fatalf("page = %v, want %v", got, tt.want)
				}
				return
			}
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("codes = %v, want %v", got, want)
			}
			if tt.opt.Offset == 0 && e.Total != len(want) {
				t.Fatalf("total = %d, want %d", e.Total, len(want))
			}
		})
	}
}

func TestExpandDisplayAndVersion(t *testing.T) {
	src := loadSource(t)
	e, err := Expand(t.Context(), src, src.vs["http://hl7.org/fhir/ValueSet/yesnodontknow"], ExpandOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range e.Codes {
		// The include's own display wins over the code system's ("Asked
		// But Unknown").
		if c.Code == "asked-unknown" && c.Display != "Don't know" {
			t.Errorf("display = %q", c.Display)
		}
		if c.Code == "Y" && (c.Display != "Yes" || c.System != "http://terminology.hl7.org/CodeSystem/v2-0136" || c.Version != "2.9") {
			t.Errorf("Y = %+v", c)
		}
	}
}

func TestExpandFailures(t *testing.T) {
	src := loadSource(t)
	vs := func(body string) *ValueSet {
		v, err := ParseValueSet([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		vs   *ValueSet
		hide string
		opt  ExpandOptions
		want error
	}{
		{"hidden code system is absent", src.vs["http://hl7.org/fhir/ValueSet/condition-clinical"], "http://terminology.hl7.org/CodeSystem/condition-clinical", ExpandOptions{}, ErrNotFound},
		{"hidden import is absent", src.vs["http://hl7.org/fhir/ValueSet/yesnodontknow"], "http://terminology.hl7.org/ValueSet/v2-0136", ExpandOptions{}, ErrNotFound},
		{"unsupported operator", vs(`{"resourceType":"ValueSet","compose":{"include":[{"system":"` + actMood + `","filter":[{"property":"code","op":"regex","value":"."}]}]}}`), "", ExpandOptions{}, ErrUnsupported},
		{"content not complete", vs(`{"resourceType":"ValueSet","compose":{"include":[{"system":"http://hl7.org/fhir/CodeSystem/summary"}]}}`), "", ExpandOptions{}, ErrNotFound},
		{"self import", vs(`{"resourceType":"ValueSet","url":"http://hl7.org/fhir/ValueSet/yesnodontknow","compose":{"include":[{"valueSet":["http://hl7.org/fhir/ValueSet/yesnodontknow"]}]}}`), "", ExpandOptions{}, ErrInvalid},
		{"count too large", src.vs["http://hl7.org/fhir/ValueSet/condition-clinical"], "", ExpandOptions{Count: MaxCount + 1}, ErrTooCostly},
		{"negative offset", src.vs["http://hl7.org/fhir/ValueSet/condition-clinical"], "", ExpandOptions{Offset: -1}, ErrInvalid},
		{"empty include", vs(`{"resourceType":"ValueSet","compose":{"include":[{}]}}`), "", ExpandOptions{}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src.hidden = map[string]bool{tt.hide: true}
			defer func() { src.hidden = map[string]bool{} }()
			_, err := Expand(t.Context(), src, tt.vs, tt.opt)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// A value set importing itself through another must end, and one too
// large must be refused, not built.
func TestExpandBounds(t *testing.T) {
	src := loadSource(t)
	a, _ := ParseValueSet([]byte(`{"resourceType":"ValueSet","url":"urn:a","compose":{"include":[{"valueSet":["urn:b"]}]}}`))
	b, _ := ParseValueSet([]byte(`{"resourceType":"ValueSet","url":"urn:b","compose":{"include":[{"valueSet":["urn:a"]}]}}`))
	src.vs["urn:a"], src.vs["urn:b"] = a, b
	if _, err := Expand(t.Context(), src, a, ExpandOptions{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("cycle: %v", err)
	}
	var concepts []string
	for i := range MaxExpansion + 1 {
		concepts = append(concepts, `{"code":"c`+strings.Repeat("x", i%3)+itoa(i)+`"}`)
	}
	big, err := ParseCodeSystem([]byte(`{"resourceType":"CodeSystem","url":"urn:big","content":"complete","concept":[` + strings.Join(concepts, ",") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	src.cs["urn:big"] = big
	vs, _ := ParseValueSet([]byte(`{"resourceType":"ValueSet","compose":{"include":[{"system":"urn:big"}]}}`))
	if _, err := Expand(t.Context(), src, vs, ExpandOptions{}); !errors.Is(err, ErrTooCostly) {
		t.Fatalf("big: %v", err)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestValidateCode(t *testing.T) {
	src := loadSource(t)
	clinical := src.vs["http://hl7.org/fhir/ValueSet/condition-clinical"]
	sys := "http://terminology.hl7.org/CodeSystem/condition-clinical"
	tests := []struct {
		name    string
		c       Coding
		result  bool
		display string
	}{
		{"nested code with system", Coding{System: sys, Code: "relapse"}, true, "Relapse"},
		{"bare code", Coding{Code: "resolved"}, true, "Resolved"},
		{"right display", Coding{System: sys, Code: "active", Display: "Active"}, true, "Active"},
		{"wrong display", Coding{System: sys, Code: "active", Display: "Busy"}, false, "Active"},
		{"other system", Coding{System: actMood, Code: "active"}, false, ""},
		{"unknown code", Coding{System: sys, Code: "dormant"}, false, ""},
		{"codes are case sensitive", Coding{System: sys, Code: "Active"}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := ValidateInValueSet(t.Context(), src, clinical, tt.c)
			if err != nil {
				t.Fatal(err)
			}
			if v.Result != tt.result || v.Display != tt.display {
				t.Fatalf("got %+v, want result %v display %q", v, tt.result, tt.display)
			}
			if !v.Result && v.Message == "" {
				t.Fatal("no message")
			}
			if tt.c.Display != "" && strings.Contains(v.Message, tt.c.Display) || strings.Contains(v.Message, tt.c.Code) {
				t.Fatalf("message echoes the input: %q", v.Message)
			}
		})
	}
	cs := src.cs[sys]
	if v, _ := ValidateInCodeSystem(cs, Coding{Code: "remission"}); !v.Result || v.Display != "Remission" {
		t.Errorf("code system: %+v", v)
	}
	if v, _ := ValidateInCodeSystem(cs, Coding{System: actMood, Code: "remission"}); v.Result {
		t.Errorf("another system's coding passed: %+v", v)
	}
	if _, err := ValidateInCodeSystem(cs, Coding{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("no code: %v", err)
	}
}

func TestLookup(t *testing.T) {
	src := loadSource(t)
	get := func(p map[string]any, name string) []map[string]any {
		var out []map[string]any
		for _, e := range p["parameter"].([]any) {
			if m := e.(map[string]any); m["name"] == name {
				out = append(out, m)
			}
		}
		return out
	}
	p, err := Lookup(src.cs["http://hl7.org/fhir/CodeSystem/example"], "chol-mmol", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := get(p, "name"); len(n) != 1 || n[0]["valueString"] != "ACME Codes for Cholesterol in Serum/Plasma" {
		t.Errorf("name = %v", n)
	}
	if d := get(p, "display"); len(d) != 1 || d[0]["valueString"] != "SChol (mmol/L)" {
		t.Errorf("display = %v", d)
	}
	if v := get(p, "version"); len(v) != 1 || v[0]["valueString"] != "4.0.1" {
		t.Errorf("version = %v", v)
	}
	ds := get(p, "designation")
	if len(ds) != 1 {
		t.Fatalf("designations = %v", ds)
	}
	parts := ds[0]["part"].([]any)
	if last := parts[len(parts)-1].(map[string]any); last["name"] != "value" || last["valueString"] != "From ACME POC Testing" {
		t.Errorf("designation = %v", parts)
	}
	// The hierarchy as parent and child properties; asked-for only.
	p, err = Lookup(src.cs[actMood], "CRT", []string{"parent", "status"})
	if err != nil {
		t.Fatal(err)
	}
	var props []string
	for _, pr := range get(p, "property") {
		pp := pr["part"].([]any)
		code := pp[0].(map[string]any)["valueCode"].(string)
		val := pp[1].(map[string]any)
		props = append(props, code+"="+firstString(val))
	}
	slices.Sort(props)
	if want := []string{"parent=_ActMoodPredicate", "status=deprecated"}; !slices.Equal(props, want) {
		t.Errorf("properties = %v, want %v", props, want)
	}
	if _, err := Lookup(src.cs[actMood], "NOPE", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown code: %v", err)
	}
}

func firstString(m map[string]any) string {
	for k, v := range m {
		if strings.HasPrefix(k, "value") {
			s, _ := v.(string)
			return s
		}
	}
	return ""
}

func TestParseCodeSystemRefuses(t *testing.T) {
	for name, body := range map[string]string{
		"not a code system": `{"resourceType":"ValueSet"}`,
		"duplicate code":    `{"resourceType":"CodeSystem","concept":[{"code":"a"},{"code":"b","concept":[{"code":"a"}]}]}`,
		"no code":           `{"resourceType":"CodeSystem","concept":[{"display":"x"}]}`,
		"not JSON":          `{`,
	} {
		if _, err := ParseCodeSystem([]byte(body)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
