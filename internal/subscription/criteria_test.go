package subscription

import (
	"errors"
	"strings"
	"testing"
)

func TestParseCriteria(t *testing.T) {
	good := []struct{ in, typ string }{
		{"Observation?patient=Patient/123&code=http://loinc.org|1234-5", "Observation"},
		{"Patient", "Patient"},
		{"Encounter?status=finished", "Encounter"},
	}
	for _, c := range good {
		got, err := ParseCriteria(c.in)
		if err != nil || got.Type != c.typ {
			t.Errorf("%q: %+v, %v", c.in, got, err)
		}
	}
	got, _ := ParseCriteria("Observation?code=http://loinc.org|1234-5")
	if q := got.Search("o1"); q.Get("_id") != "o1" || q.Get("code") != "http://loinc.org|1234-5" {
		t.Errorf("search of one resource: %v", q)
	}
	bad := []string{"", "observation?code=x", "Observation/1", "Foo?x=1", "Observation?_count=5", "Observation?_include=Observation:subject",
		"Observation?code=%zz", "Observation?code=x#frag", strings.Repeat("a", MaxCriteriaLen+1),
		"Observation?" + strings.Repeat("code=x&", MaxCriteriaParams+1)}
	for _, in := range bad {
		if _, err := ParseCriteria(in); !errors.Is(err, ErrCriteria) {
			t.Errorf("%.40q accepted: %v", in, err)
		}
	}
	// Refusals never echo a value.
	_, err := ParseCriteria("Observation?_sort=SECRET-VALUE&x=y")
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error %v", err)
	}
}

// FuzzParseCriteria: criteria come from the client; parsing never
// panics, a refusal never echoes the input, and an accepted one names a
// storable type and no result parameter.
func FuzzParseCriteria(f *testing.F) {
	for _, s := range []string{"Observation?patient=Patient/123&code=http://loinc.org|1234-5", "Patient?name:exact=x", "Observation?_count=1",
		"?", "Observation?&&=", "Observation?a=%00", "Subscription?status=active", "Observation?code:not=a,b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCriteria(s)
		if err != nil {
			if len(s) > 12 && strings.Contains(err.Error(), s) {
				t.Fatalf("error echoes the input: %v", err)
			}
			return
		}
		if c.Type == "" || len(s) > MaxCriteriaLen {
			t.Fatalf("accepted %q as %+v", s, c)
		}
		for k := range c.Query {
			name, _, _ := strings.Cut(k, ":")
			if resultParams[name] {
				t.Fatalf("accepted result parameter %q", k)
			}
		}
		if c.Search("x").Get("_id") == "" {
			t.Fatal("no _id in the evaluation")
		}
	})
}

// FuzzParseSpec: a Subscription body is untrusted JSON.
func FuzzParseSpec(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Subscription","status":"requested","criteria":"Observation?code=x","channel":{"type":"rest-hook","endpoint":"https://example.org/hook","payload":"application/fhir+json","header":["Authorization: Bearer x"]}}`))
	f.Add([]byte(`{"resourceType":"Subscription","status":"requested","criteria":"Observation","channel":{"type":"websocket"}}`))
	f.Add([]byte(`{"resourceType":"Subscription","channel":{"header":["a\r\nb: c"]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		sp, err := ParseSpec(b)
		if err != nil {
			return
		}
		if sp.Channel == ChannelRestHook && (sp.Endpoint == nil || sp.Endpoint.Host == "") {
			t.Fatalf("rest-hook without endpoint: %+v", sp)
		}
		for _, h := range sp.Headers {
			if strings.ContainsAny(h[0]+h[1], "\r\n") || reservedHeader(h[0]) {
				t.Fatalf("header accepted: %q", h)
			}
		}
	})
}
