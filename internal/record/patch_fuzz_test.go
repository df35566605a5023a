package record

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/fhir"
)

// seeds returns the files of testdata/patch with the given suffix.
func seeds(f *testing.F, suffix string) [][]byte {
	f.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "patch", "*"+suffix))
	if err != nil || len(names) == 0 {
		f.Fatalf("no seeds *%s: %v", suffix, err)
	}
	var out [][]byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// checkPatchError fails on an error that is not an *Error with a 4xx
// status, or that quotes the resource's secret value.
func checkPatchError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	e := AsError(err)
	if code := StatusCode(e); code < 400 || code >= 500 {
		t.Fatalf("status %d for bad input: %v", code, err)
	}
	for _, is := range e.Issues {
		if strings.Contains(is.Diagnostic, patchSecret) {
			t.Fatalf("the error quotes resource content: %v", is.Diagnostic)
		}
	}
}

// FuzzFHIRPathPath: the path parser never panics, and whatever it
// accepts evaluates without panicking on a real resource.
func FuzzFHIRPathPath(f *testing.F) {
	for _, s := range []string{"Observation.status", "Observation.identifier.where(system = 'urn:a')[0].value",
		`Observation.identifier.where(value = 'it\'s')`, "Observation.code.coding[1]", "Observation.identifier.first()",
		"Observation.where(", "Observation[0", "Observation.identifier.where(value = '" + patchSecret + "' or true)"} {
		f.Add(s)
	}
	shapes := &fhir.Shapes{}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseFHIRPath(s)
		if err != nil {
			checkPatchError(t, err)
			if len(s) >= 8 && strings.Contains(AsError(err).Issues[0].Diagnostic, s) {
				t.Fatalf("the error quotes the path")
			}
			return
		}
		var res map[string]any
		if err := jsonUnmarshalNumber(patchBase, &res); err != nil {
			t.Fatal(err)
		}
		if _, err := eval(shapes, res, p); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzFHIRPathPatch: a whole FHIRPath Patch (Parameters JSON) parsed
// and applied: no panic, only 4xx errors that quote no content.
func FuzzFHIRPathPatch(f *testing.F) {
	for _, b := range seeds(f, "fhirpath-ops.json") {
		f.Add(b)
	}
	shapes := &fhir.Shapes{}
	if _, _, err := shapes.Element("Observation", "status"); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := fhir.Decode(bytes.NewReader(body), fhir.Limits{MaxBytes: 1 << 16})
		if err != nil {
			return
		}
		p, err := parseFHIRPathPatch(shapes, res)
		if err != nil {
			checkPatchError(t, err)
			return
		}
		_, err = p.Apply(patchBase)
		checkPatchError(t, err)
	})
}

// FuzzJSONPatch: the JSON Patch entry point (parse and apply): no
// panic, only 4xx errors that quote no content.
func FuzzJSONPatch(f *testing.F) {
	for _, b := range seeds(f, "json-patch.json") {
		f.Add(b)
	}
	f.Add([]byte(`[{"op":"test","path":"/valueString","value":"x"}]`))
	f.Add([]byte(`[{"op":"add","path":"/identifier/-1","value":1}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parseJSONPatch(body, fhir.Limits{MaxBytes: 1 << 16})
		if err != nil {
			checkPatchError(t, err)
			return
		}
		_, err = p.Apply(patchBase)
		checkPatchError(t, err)
	})
}

func jsonUnmarshalNumber(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}
