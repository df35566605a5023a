package fhir

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestValidateRequiredElements(t *testing.T) {
	v := sharedValidator(t)
	const (
		code = `"code":{"text":"Zyx"}`
		obs  = `"resourceType":"Observation","status":"final",` + code
		ext  = `{"url":"http://example.org/Zyx","valueString":"Zyx"}`
	)
	tests := []struct {
		name string
		body string
		want []string // paths reported as missing; nil: valid
	}{
		{"observation without status", `{"resourceType":"Observation",` + code + `}`, []string{"Observation.status"}},
		{"status as extension only", `{"resourceType":"Observation","_status":{"extension":[` + ext + `]},` + code + `}`, nil},
		{"status null", `{"resourceType":"Observation","status":null,` + code + `}`, []string{"Observation.status"}},
		{"component without code", `{` + obs + `,"component":[{` + code + `},{"valueString":"Zyx"}]}`, []string{"Observation.component[1].code"}},
		// Observation.component.value[x] is 0..1: a component with only a code is valid.
		{"component without value", `{` + obs + `,"component":[{` + code + `}]}`, nil},
		{"patient link without other", `{"resourceType":"Patient","link":[{"type":"seealso"}]}`, []string{"Patient.link[0].other"}},
		{"patient link complete", `{"resourceType":"Patient","link":[{"type":"seealso","other":{"reference":"Patient/1"}}]}`, nil},
		{"extension without url", `{"resourceType":"Patient","extension":[{"valueString":"Zyx"}]}`, []string{"Patient.extension[0].url"}},
		{"modifierExtension without url", `{"resourceType":"Patient","modifierExtension":[{"valueString":"Zyx"}]}`, []string{"Patient.modifierExtension[0].url"}},
		{"nested extension without url", `{"resourceType":"Patient","extension":[{"url":"http://example.org/a","extension":[{"valueString":"Zyx"}]}]}`, []string{"Patient.extension[0].extension[0].url"}},
		{"primitive extension without url", `{"resourceType":"Patient","birthDate":"2000-01-01","_birthDate":{"extension":[{"valueString":"Zyx"}]}}`, []string{"Patient._birthDate.extension[0].url"}},
		{"extension in data type without url", `{"resourceType":"Patient","name":[{"family":"Zyx","extension":[{"valueString":"Zyx"}]}]}`, []string{"Patient.name[0].extension[0].url"}},
		// Extension.value[x] is 0..1; UsageContext.value[x] is 1..1.
		{"extension without value", `{"resourceType":"Patient","extension":[{"url":"http://example.org/a"}]}`, nil},
		{"usage context without value", `{"resourceType":"Library","status":"draft","type":{"text":"x"},"useContext":[{"code":{"code":"focus"}}]}`, []string{"Library.useContext[0].value[x]"}},
		{"usage context with value", `{"resourceType":"Library","status":"draft","type":{"text":"x"},"useContext":[{"code":{"code":"focus"},"valueCodeableConcept":{"text":"x"}}]}`, nil},
		{"narrative without div", `{"resourceType":"Patient","text":{"status":"generated"}}`, []string{"Patient.text.div"}},
		{"contained without status", `{"resourceType":"Patient","contained":[{"resourceType":"Observation","id":"o",` + code + `}]}`, []string{"Patient.contained[0].status"}},
		{"bundle request without method", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{` + obs + `},"request":{"url":"Observation"}}]}`, []string{"Bundle.entry[0].request.method"}},
		{"bundle without request", `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{` + obs + `}}]}`, nil},
		{"bundle entry without status", `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Observation",` + code + `}}]}`, []string{"Bundle.entry[0].resource.status"}},
		{"bundle without type", `{"resourceType":"Bundle"}`, []string{"Bundle.type"}},
		{"recursive questionnaire item", `{"resourceType":"Questionnaire","status":"draft","item":[{"linkId":"1","type":"group","item":[{"linkId":"1.1","type":"group","item":[{"type":"string"}]}]}]}`, []string{"Questionnaire.item[0].item[0].item[0].linkId"}},
		{"required array present", `{"resourceType":"SearchParameter","url":"http://example.org/sp","name":"x","status":"draft","description":"x","code":"x","base":["Patient"],"type":"token"}`, nil},
		{"required array empty", `{"resourceType":"SearchParameter","url":"http://example.org/sp","name":"x","status":"draft","description":"x","code":"x","base":[],"type":"token"}`, []string{"SearchParameter.base"}},
		{"several missing", `{"resourceType":"Observation","component":[{}]}`, []string{"Observation.status", "Observation.code", "Observation.component[0].code"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Validate(mustDecode(t, tt.body))
			var missing []string
			var ve *ValidationError
			if errors.As(err, &ve) {
				for _, is := range ve.Issues {
					if strings.Contains(is.Path+is.Message, "Zy") {
						t.Errorf("issue echoes a value: %+v", is)
					}
					if is.Message == missingMessage {
						missing = append(missing, is.Path)
					}
				}
			} else if err != nil {
				t.Fatalf("err = %v, want nil or *ValidationError", err)
			}
			if tt.want == nil {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			slices.Sort(missing)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(missing, want) {
				t.Errorf("missing = %q, want %q (issues %+v)", missing, want, ve.Issues)
			}
		})
	}
}

// TestRequiredTableCoversR4 checks the compiled table against facts of the
// R4 definitions that are easy to get wrong.
func TestRequiredTableCoversR4(t *testing.T) {
	tab, err := compileRequired()
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.types) != len(r4Types) {
		t.Errorf("table has %d resource types, want %d", len(tab.types), len(r4Types))
	}
	names := func(n *reqNode) []string {
		var out []string
		for _, e := range n.required {
			out = append(out, e.name)
		}
		return out
	}
	tests := []struct {
		path []string // resource type, then members
		want []string
	}{
		{[]string{"Observation"}, []string{"status", "code"}},
		{[]string{"Observation", "component"}, []string{"code"}},
		{[]string{"Patient"}, nil},
		{[]string{"Patient", "link"}, []string{"other", "type"}},
		{[]string{"Patient", "text"}, []string{"status", "div"}},
		{[]string{"Bundle", "entry", "request"}, []string{"method", "url"}},
		{[]string{"Bundle", "entry", "response"}, []string{"status"}},
		{[]string{"Questionnaire", "item", "item", "item"}, []string{"linkId", "type"}},
		{[]string{"Library", "useContext"}, []string{"code", "value[x]"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.path, "."), func(t *testing.T) {
			n := tab.types[tt.path[0]]
			for _, m := range tt.path[1:] {
				if n == nil {
					break
				}
				n = n.children[m]
			}
			if n == nil {
				t.Fatal("no node")
			}
			if got := names(n); !slices.Equal(got, tt.want) {
				t.Errorf("required = %q, want %q", got, tt.want)
			}
		})
	}
	if got := names(tab.extension); !slices.Equal(got, []string{"url"}) {
		t.Errorf("Extension required = %q, want [url]", got)
	}
	// Types with no required element need no node of their own.
	for _, member := range []string{"identifier", "name", "telecom", "address", "meta"} {
		if _, ok := tab.types["Patient"].children[member]; ok {
			t.Errorf("Patient.%s has a node, but its type requires nothing", member)
		}
	}
}

func BenchmarkCheckRequiredObservation(b *testing.B) {
	v := sharedValidator(b)
	res := mustDecode(b, string(readTestdata(b, "Observation.json")))
	b.ReportAllocs()
	for b.Loop() {
		ve := &ValidationError{}
		v.required.checkRequired(res, "Observation", ve)
		if len(ve.Issues) > 0 {
			b.Fatal(ve)
		}
	}
}

// FuzzValidate checks that Validate never panics on a decoded body, that
// it returns nil, a *ValidationError or ErrUnknownType, and that it
// respects MaxIssues. Seeds: the official examples in testdata/r4-examples.
func FuzzValidate(f *testing.F) {
	files, _ := filepath.Glob("testdata/r4-examples/*.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) < 4<<10 {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"resourceType":"Observation","component":[{},{"extension":[{}]}],"_status":{"extension":[{"extension":[{}]}]}}`))
	f.Add([]byte(`{"resourceType":"Questionnaire","item":[{"item":[{"item":[{}]}]}],"contained":[{"resourceType":"Bot"}]}`))
	v := sharedValidator(f)
	lim := Limits{MaxBytes: 64 << 10, MaxDepth: 24, MaxEntries: 8}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := Decode(bytes.NewReader(body), lim)
		if err != nil {
			return
		}
		err = v.Validate(res)
		var ve *ValidationError
		switch {
		case err == nil:
		case errors.As(err, &ve):
			if len(ve.Issues) == 0 || len(ve.Issues) > MaxIssues {
				t.Fatalf("%d issues", len(ve.Issues))
			}
		case errors.Is(err, ErrUnknownType):
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	})
}
