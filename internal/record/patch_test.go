package record

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/fhir"
)

const patchSecret = "SECRET-PATCH-VALUE"

var patchBase = []byte(`{"resourceType":"Observation","id":"o1","meta":{"versionId":"1"},"status":"final",
"code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},
"identifier":[{"system":"urn:a","value":"` + patchSecret + `"},{"system":"urn:b","value":"two"}],
"subject":{"reference":"Patient/p1"},"valueString":"` + patchSecret + `"}`)

func fpParams(t testing.TB, ops ...string) fhir.Resource {
	t.Helper()
	var res fhir.Resource
	if err := json.Unmarshal([]byte(`{"resourceType":"Parameters","parameter":[`+strings.Join(ops, ",")+`]}`), &res); err != nil {
		t.Fatal(err)
	}
	return res
}

func op(typ, path string, parts ...string) string {
	return `{"name":"operation","part":[{"name":"type","valueCode":"` + typ + `"},{"name":"path","valueString":` + mustJSON(path) + `}` + func() string {
		if len(parts) == 0 {
			return ""
		}
		return "," + strings.Join(parts, ",")
	}() + `]}`
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestFHIRPathPatch: each operation type of the path subset, applied.
func TestFHIRPathPatch(t *testing.T) {
	shapes := &fhir.Shapes{}
	for _, tc := range []struct {
		name string
		ops  []string
		want func(m map[string]any) bool
	}{
		{"replace", []string{op("replace", "Observation.status", `{"name":"value","valueCode":"amended"}`)},
			func(m map[string]any) bool { return m["status"] == "amended" }},
		{"add single", []string{op("add", "Observation", `{"name":"name","valueString":"effectiveDateTime"}`, `{"name":"value","valueDateTime":"2024-01-02"}`)},
			func(m map[string]any) bool { return m["effectiveDateTime"] == "2024-01-02" }},
		{"add repeating creates a list", []string{op("add", "Observation", `{"name":"name","valueString":"note"}`, `{"name":"value","part":[{"name":"text","valueString":"n"}]}`)},
			func(m map[string]any) bool { n, _ := m["note"].([]any); return len(n) == 1 }},
		{"add into a nested list", []string{op("add", "Observation.code", `{"name":"name","valueString":"coding"}`, `{"name":"value","valueCoding":{"system":"urn:x","code":"y"}}`)},
			func(m map[string]any) bool { return len(m["code"].(map[string]any)["coding"].([]any)) == 2 }},
		{"insert", []string{op("insert", "Observation.identifier", `{"name":"index","valueInteger":1}`, `{"name":"value","valueIdentifier":{"value":"mid"}}`)},
			func(m map[string]any) bool { return m["identifier"].([]any)[1].(map[string]any)["value"] == "mid" }},
		{"move", []string{op("move", "Observation.identifier", `{"name":"source","valueInteger":1}`, `{"name":"destination","valueInteger":0}`)},
			func(m map[string]any) bool { return m["identifier"].([]any)[0].(map[string]any)["value"] == "two" }},
		{"delete by where", []string{op("delete", "Observation.identifier.where(system = 'urn:a')")},
			func(m map[string]any) bool {
				ids := m["identifier"].([]any)
				return len(ids) == 1 && ids[0].(map[string]any)["value"] == "two"
			}},
		{"delete by index, last one drops the list", []string{op("delete", "Observation.identifier[1]"), op("delete", "Observation.identifier[0]")},
			func(m map[string]any) bool { _, ok := m["identifier"]; return !ok }},
		{"delete of nothing", []string{op("delete", "Observation.interpretation")},
			func(m map[string]any) bool { return m["status"] == "final" }},
		{"replace through where and index", []string{op("replace", "Observation.identifier.where(value = 'two')[0].system", `{"name":"value","valueUri":"urn:c"}`)},
			func(m map[string]any) bool { return m["identifier"].([]any)[1].(map[string]any)["system"] == "urn:c" }},
		{"escaped literal", []string{op("replace", `Observation.identifier.where(value = 'it\'s').system`, `{"name":"value","valueUri":"urn:c"}`)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseFHIRPathPatch(shapes, fpParams(t, tc.ops...))
			if err != nil {
				t.Fatal(err)
			}
			out, err := p.Apply(patchBase)
			if tc.want == nil {
				if err == nil || StatusCode(err) != statusUnprocessableEntity || strings.Contains(err.Error(), "it's") {
					t.Fatalf("want a 422 that does not quote the literal, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(out, &m); err != nil {
				t.Fatal(err)
			}
			if !tc.want(m) {
				t.Fatalf("result %s", out)
			}
		})
	}
}

// TestFHIRPathPatchRefusals: what the subset does not understand is
// refused (400), what does not fit the resource is 422; no error quotes
// the path or a value.
func TestFHIRPathPatchRefusals(t *testing.T) {
	shapes := &fhir.Shapes{}
	parse := []string{
		op("delete", "Observation.identifier.first()"),
		op("delete", "Observation.subject.resolve()"),
		op("delete", "Observation.identifier.where(value = '"+patchSecret+"' or true)"),
		op("delete", "Observation.identifier.where(value.exists())"),
		op("delete", "Observation.value as Quantity"),
		op("delete", "Observation.identifier[0"),
		op("delete", "Observation.identifier[-1]"),
		op("delete", ""),
		op("delete", strings.Repeat("Observation.a", 100)),
		op("add", "Observation", `{"name":"value","valueString":"x"}`),
		op("add", "Observation", `{"name":"name","valueString":"a.b"}`, `{"name":"value","valueString":"x"}`),
		op("insert", "Observation.identifier", `{"name":"value","valueString":"x"}`),
		op("move", "Observation.identifier", `{"name":"source","valueInteger":0}`),
		op("replace", "Observation.status"),
		op("explode", "Observation"),
		`{"name":"operation","part":[{"name":"type","valueCode":"delete"},{"name":"type","valueCode":"delete"}]}`,
		`{"name":"other"}`,
	}
	for _, o := range parse {
		_, err := parseFHIRPathPatch(shapes, fpParams(t, o))
		if err == nil || StatusCode(err) != statusBadRequest {
			t.Errorf("%s: got %v, want 400", o, err)
			continue
		}
		if strings.Contains(err.Error(), patchSecret) || strings.Contains(err.Error(), "Observation.") {
			t.Errorf("the error quotes the path: %v", err)
		}
	}
	apply := []string{
		op("replace", "Observation.identifier.system", `{"name":"value","valueUri":"u"}`), // two elements
		op("replace", "Observation.note", `{"name":"value","valueString":"u"}`),           // none
		op("add", "Observation", `{"name":"name","valueString":"status"}`, `{"name":"value","valueCode":"x"}`),
		op("add", "Observation", `{"name":"name","valueString":"bogus"}`, `{"name":"value","valueCode":"x"}`),
		op("insert", "Observation.status", `{"name":"index","valueInteger":0}`, `{"name":"value","valueCode":"x"}`),
		op("insert", "Observation.identifier", `{"name":"index","valueInteger":9}`, `{"name":"value","valueIdentifier":{}}`),
		op("move", "Observation.identifier", `{"name":"source","valueInteger":5}`, `{"name":"destination","valueInteger":0}`),
		op("delete", "Observation.identifier"), // two elements
		op("delete", "Patient.identifier"),     // another type
	}
	for _, o := range apply {
		p, err := parseFHIRPathPatch(shapes, fpParams(t, o))
		if err != nil {
			t.Errorf("%s: parse: %v", o, err)
			continue
		}
		_, err = p.Apply(patchBase)
		if err == nil || (StatusCode(err) != statusUnprocessableEntity && StatusCode(err) != statusBadRequest) {
			t.Errorf("%s: got %v, want 422 or 400", o, err)
			continue
		}
		if strings.Contains(err.Error(), patchSecret) {
			t.Errorf("the error quotes a value: %v", err)
		}
	}
}

// TestJSONPatch: RFC 6902 through the library, with the errors told
// without values, negative indices refused, and bounds.
func TestJSONPatch(t *testing.T) {
	lim := fhir.Limits{MaxBytes: 4096}
	ok, err := parseJSONPatch([]byte(`[{"op":"replace","path":"/status","value":"amended"},{"op":"copy","from":"/subject","path":"/focus"}]`), lim)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ok.Apply(patchBase)
	if err != nil || !strings.Contains(string(out), `"status":"amended"`) {
		t.Fatalf("apply: %s %v", out, err)
	}
	for _, tc := range []struct {
		name, patch string
		status      int
	}{
		{"not an array", `{"op":"add"}`, statusBadRequest},
		{"empty", `[]`, statusBadRequest},
		{"unknown op", `[{"op":"merge","path":"/a"}]`, statusBadRequest},
		{"no path", `[{"op":"remove"}]`, statusBadRequest},
		{"test fails", `[{"op":"test","path":"/valueString","value":"guess"}]`, statusUnprocessableEntity},
		{"missing", `[{"op":"remove","path":"/nothing"}]`, statusUnprocessableEntity},
		{"negative index", `[{"op":"remove","path":"/identifier/-1"}]`, statusUnprocessableEntity},
		{"index", `[{"op":"remove","path":"/identifier/7"}]`, statusUnprocessableEntity},
		{"copies grow", `[` + strings.Repeat(`{"op":"copy","from":"/identifier","path":"/x"},`, 80) + `{"op":"test","path":"/id","value":"o1"}]`, statusTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseJSONPatch([]byte(tc.patch), lim)
			if err == nil {
				_, err = p.Apply(patchBase)
			}
			if StatusCode(err) != tc.status {
				t.Fatalf("got %v, want %d", err, tc.status)
			}
			if strings.Contains(err.Error(), patchSecret) || strings.Contains(err.Error(), "guess") {
				t.Fatalf("the error quotes a value: %v", err)
			}
		})
	}
	if _, err := parseJSONPatch([]byte(`[`+strings.Repeat(`{"op":"remove","path":"/a"},`, maxJSONPatchOps)+`{"op":"remove","path":"/a"}]`), fhir.Limits{}); StatusCode(err) != statusBadRequest {
		t.Fatalf("more than %d operations: %v", maxJSONPatchOps, err)
	}
}

// TestMetaEdit: $meta-add keeps what is there, $meta-delete removes by
// system and code.
func TestMetaEdit(t *testing.T) {
	params := func(meta string) fhir.Resource {
		var r fhir.Resource
		if err := json.Unmarshal([]byte(`{"resourceType":"Parameters","parameter":[{"name":"meta","valueMeta":`+meta+`}]}`), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	add, err := parseMetaEdit(params(`{"security":[{"system":"s","code":"R"}],"tag":[{"system":"t","code":"x"}],"profile":["p"]}`), false)
	if err != nil {
		t.Fatal(err)
	}
	out, err := add.Apply(patchBase)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := add.Apply(out)
	m, _ := metaOf(again)
	if len(m.Security) != 1 || len(m.Tag) != 1 || len(m.Profile) != 1 {
		t.Fatalf("added twice: %+v", m)
	}
	del, err := parseMetaEdit(params(`{"security":[{"system":"s","code":"R"}],"profile":["p"]}`), true)
	if err != nil {
		t.Fatal(err)
	}
	out, _ = del.Apply(again)
	m, _ = metaOf(out)
	if len(m.Security) != 0 || len(m.Profile) != 0 || len(m.Tag) != 1 {
		t.Fatalf("deleted: %+v", m)
	}
	for _, bad := range []string{`{}`, `{"security":[{"system":"s"}]}`, `"x"`} {
		if _, err := parseMetaEdit(params(bad), false); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
