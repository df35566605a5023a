package fhir

import (
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
)

const obsWithComponent = `{"resourceType":"Observation","id":"o1","meta":{"versionId":"2","security":[{"system":"s","code":"R"}]},
"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
"status":"final","_status":{"extension":[{"url":"u","valueString":"e"}]},
"category":[{"text":"vital"}],"code":{"text":"bp"},"subject":{"reference":"Patient/p1"},
"valueQuantity":{"value":1.50,"unit":"mm"},"note":[{"text":"secret note"}],
"component":[{"code":{"text":"sys"},"valueQuantity":{"value":120},"interpretation":[{"text":"high"}]}],
"referenceRange":[{"text":"normal"}]}`

func members(t *testing.T, b []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %v", err)
	}
	return m
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func subsettedTag(t *testing.T, m map[string]json.RawMessage) bool {
	t.Helper()
	var meta struct {
		Tag []Coding `json:"tag"`
	}
	_ = json.Unmarshal(m["meta"], &meta)
	for _, c := range meta.Tag {
		if c.System == SubsettedSystem && c.Code == SubsettedCode {
			return true
		}
	}
	return false
}

// Coding is the part of a Coding these tests read.
type Coding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

func TestSubsetApply(t *testing.T) {
	var ss Subsetter
	tests := []struct {
		name, summary, elements string
		want                    []string
		tagged                  bool
	}{
		{"full", "", "", []string{"category", "code", "component", "id", "meta", "note", "referenceRange", "resourceType", "status", "_status", "subject", "text", "valueQuantity"}, false},
		{"summary false", "false", "", []string{"category", "code", "component", "id", "meta", "note", "referenceRange", "resourceType", "status", "_status", "subject", "text", "valueQuantity"}, false},
		{"summary true", "true", "", []string{"code", "component", "id", "meta", "resourceType", "status", "_status", "subject", "valueQuantity"}, true},
		{"summary text", "text", "", []string{"code", "id", "meta", "resourceType", "status", "_status", "text"}, true},
		{"summary data", "data", "", []string{"category", "code", "component", "id", "meta", "note", "referenceRange", "resourceType", "status", "_status", "subject", "valueQuantity"}, true},
		{"elements", "", "subject", []string{"code", "id", "meta", "resourceType", "status", "_status", "subject"}, true},
		{"elements choice", "", "value", []string{"code", "id", "meta", "resourceType", "status", "_status", "valueQuantity"}, true},
		{"elements choice [x]", "", "value[x]", []string{"code", "id", "meta", "resourceType", "status", "_status", "valueQuantity"}, true},
		{"elements typed", "", "Observation.note", []string{"code", "id", "meta", "note", "resourceType", "status", "_status"}, true},
		{"elements of another type", "", "Patient.name", []string{"category", "code", "component", "id", "meta", "note", "referenceRange", "resourceType", "status", "_status", "subject", "text", "valueQuantity"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := url.Values{}
			if tt.summary != "" {
				v.Set("_summary", tt.summary)
			}
			if tt.elements != "" {
				v.Set("_elements", tt.elements)
			}
			sub, err := ParseSubset(v["_summary"], v["_elements"])
			if err != nil {
				t.Fatal(err)
			}
			out, err := ss.Apply(sub, []byte(obsWithComponent))
			if err != nil {
				t.Fatal(err)
			}
			m := members(t, out)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if got := keys(m); !slices.Equal(got, want) {
				t.Errorf("members = %v, want %v", got, want)
			}
			if got := subsettedTag(t, m); got != tt.tagged {
				t.Errorf("SUBSETTED tag = %v, want %v", got, tt.tagged)
			}
			if tt.tagged && !strings.Contains(string(m["meta"]), `"security"`) {
				t.Error("meta.security was lost")
			}
		})
	}
}

// TestSubsetSummaryNested checks that _summary=true subsets backbone
// elements and data types too, and keeps decimals as written.
func TestSubsetSummaryNested(t *testing.T) {
	var ss Subsetter
	sub, _ := ParseSubset([]string{"true"}, nil)
	out, err := ss.Apply(sub, []byte(obsWithComponent))
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if strings.Contains(s, "interpretation") || strings.Contains(s, "high") {
		t.Errorf("component.interpretation is not a summary element: %s", s)
	}
	if !strings.Contains(s, `"value":1.50`) {
		t.Errorf("the decimal lost its precision: %s", s)
	}
	doc := `{"resourceType":"DocumentReference","status":"current","content":[{"attachment":{"contentType":"text/plain","data":"c2VjcmV0"}}]}`
	out, err = ss.Apply(sub, []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "c2VjcmV0") || !strings.Contains(string(out), "text/plain") {
		t.Errorf("Attachment.data is not a summary element, contentType is: %s", out)
	}
	bundle := `{"resourceType":"Bundle","type":"collection","entry":[{"resource":` + obsWithComponent + `}]}`
	out, err = ss.Apply(sub, []byte(bundle))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "secret note") || !strings.Contains(string(out), `"resourceType":"Observation"`) {
		t.Errorf("a nested resource is summarised against its own type: %s", out)
	}
}

func TestParseSubsetErrors(t *testing.T) {
	long := strings.Repeat("a,", MaxElements+1)
	tests := []struct {
		name              string
		summary, elements []string
	}{
		{"unknown summary", []string{"yes"}, nil},
		{"summary twice", []string{"true", "true"}, nil},
		{"combined", []string{"true"}, []string{"name"}},
		{"deep path", nil, []string{"Patient.name.family"}},
		{"not a name", nil, []string{"na me"}},
		{"star", nil, []string{"*"}},
		{"too many", nil, []string{long}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSubset(tt.summary, tt.elements)
			if !errors.Is(err, ErrSubset) {
				t.Fatalf("err = %v, want ErrSubset", err)
			}
			for _, v := range slices.Concat(tt.summary, tt.elements) {
				if len(v) > 3 && strings.Contains(err.Error(), v) {
					t.Errorf("error %q quotes the input", err)
				}
			}
		})
	}
}

// FuzzSubset checks that parsing never panics, that errors wrap
// ErrSubset, and that a subset of a resource only ever has members the
// resource had (plus resourceType and the SUBSETTED tag in meta).
func FuzzSubset(f *testing.F) {
	f.Add("true", "", []byte(obsWithComponent))
	f.Add("", "subject,Observation.note,value[x]", []byte(obsWithComponent))
	f.Add("text", "", []byte(`{"resourceType":"Patient","name":[{"family":"x"}]}`))
	f.Add("data", "", []byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","contained":[1]}}]}`))
	for _, name := range []string{"Patient", "Observation", "DocumentReference"} {
		b, err := os.ReadFile("testdata/" + name + ".json")
		if err == nil {
			f.Add("true", "", b)
		}
	}
	var ss Subsetter
	f.Fuzz(func(t *testing.T, summary, elements string, body []byte) {
		var sv, ev []string
		if summary != "" {
			sv = []string{summary}
		}
		if elements != "" {
			ev = []string{elements}
		}
		sub, err := ParseSubset(sv, ev)
		if err != nil {
			if !errors.Is(err, ErrSubset) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		out, err := ss.Apply(sub, body)
		if err != nil {
			return
		}
		var in map[string]any
		if json.Unmarshal(body, &in) != nil {
			return // Apply returned body unchanged
		}
		var got map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("subset is not JSON: %v", err)
		}
		for k := range got {
			if _, ok := in[k]; !ok && k != "resourceType" && k != "meta" {
				t.Fatalf("subset has member %q the resource had not", k)
			}
		}
	})
}
