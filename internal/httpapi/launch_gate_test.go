package httpapi

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestSearchInCompartment(t *testing.T) {
	const pid = "p1"
	for _, c := range []struct {
		typ, query string
		ok         bool
	}{
		{"Observation", "patient=p1", true},
		{"Observation", "patient=Patient/p1&code=8867-4", true},
		{"Observation", "subject=Patient/p1", true},
		{"Observation", "subject:Patient=p1&_count=5", true},
		{"Patient", "_id=p1", true},
		{"Patient", "_id=p1&name=ada", true},
		{"Observation", "subject=p1", false}, // a bare id also matches Group/p1
		{"Observation", "", false},
		{"Observation", "code=8867-4", false},
		{"Observation", "patient=p2", false},
		{"Observation", "patient=p1,p2", false},
		{"Observation", "patient=p1&patient=p2", false},
		{"Observation", "patient=p1&_include=Observation:subject", false},
		{"Observation", "patient=p1&_revinclude:iterate=Provenance:target", false},
		{"Observation", "patient=p1&subject.name=x", false},
		{"Observation", "patient=p1&_has:Observation:subject:code=x", false},
		{"Observation", "patient=p1&_page=abc", false},
		{"Patient", "_id=p2", false},
		{"Patient", "_id=Patient/p1", false},
		{"Patient", "patient=p1", false},
	} {
		r := httptest.NewRequest("GET", "/fhir/"+c.typ+"?"+c.query, nil)
		if err := searchInCompartment(r, c.typ, pid); (err == nil) != c.ok {
			t.Errorf("%s?%s: err = %v, want ok=%t", c.typ, c.query, err, c.ok)
		}
	}
	r := httptest.NewRequest("GET", "/fhir/Observation?patient=p1", nil)
	r.Header.Set("Prefer", "handling=lenient")
	if searchInCompartment(r, "Observation", pid) == nil {
		t.Error("a lenient search (unknown parameters dropped) was allowed")
	}
}

// FuzzSearchInCompartment: an allowed search names the patient in a
// single value, and carries no include, chain, _has or cursor.
func FuzzSearchInCompartment(f *testing.F) {
	for _, s := range []string{"patient=p1", "subject=Patient/p1&_include=x", "patient=p1&a.b=c", "_id=p1", "patient=%zz"} {
		f.Add("Observation", s)
	}
	f.Fuzz(func(t *testing.T, typ, raw string) {
		if typ == "" || strings.ContainsAny(typ, "/?#% ") {
			return
		}
		r := httptest.NewRequest("GET", "/fhir/x", nil)
		r.URL.RawQuery = raw
		if searchInCompartment(r, typ, "p1") != nil {
			return
		}
		q, _ := url.ParseQuery(raw)
		named := false
		for k, vs := range q {
			name, _, _ := strings.Cut(k, ":")
			if name == "_include" || name == "_revinclude" || name == "_has" || k == "_page" || strings.Contains(k, ".") {
				t.Fatalf("allowed %q with %s", raw, k)
			}
			for _, v := range vs {
				if (k == "patient" || k == "subject" || k == "_id") && v != "p1" && v != "Patient/p1" {
					t.Fatalf("allowed %q naming another patient", raw)
				}
				if v == "p1" || v == "Patient/p1" {
					named = true
				}
			}
		}
		if !named {
			t.Fatalf("allowed %q without naming the patient", raw)
		}
	})
}
