package terminology

import (
	"bytes"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/fhir"
)

// FuzzParameters feeds operation request bodies (Parameters resources)
// through the parser and every accessor the operations use: no panic,
// every refusal a terminology *Error whose message quotes no value.
func FuzzParameters(f *testing.F) {
	for _, s := range []string{
		`{"resourceType":"Parameters","parameter":[{"name":"code","valueCode":"relapse"},{"name":"system","valueUri":"http://terminology.hl7.org/CodeSystem/condition-clinical"}]}`,
		`{"resourceType":"Parameters","parameter":[{"name":"coding","valueCoding":{"system":"urn:x","code":"a","display":"A"}}]}`,
		`{"resourceType":"Parameters","parameter":[{"name":"codeableConcept","valueCodeableConcept":{"coding":[{"code":"a"},{"code":"b"}]}}]}`,
		`{"resourceType":"Parameters","parameter":[{"name":"count","valueInteger":10},{"name":"offset","valueInteger":2},{"name":"filter","valueString":"re"}]}`,
		`{"resourceType":"Parameters","parameter":[{"name":"resource","resource":{"resourceType":"Patient"}},{"name":"mode","valueCode":"create"}]}`,
		`{"resourceType":"Parameters","parameter":[{"name":"x","part":[{"name":"y","valueString":"z"}]}]}`,
		`{"resourceType":"Parameters","parameter":[{"name":"code","valueCode":"a","valueString":"b"}]}`,
		`{"resourceType":"Parameters","parameter":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := fhir.Decode(bytes.NewReader(body), fhir.Limits{MaxBytes: 1 << 16})
		if err != nil {
			return
		}
		p, err := FromParameters(res)
		if err != nil {
			checkSafe(t, err, body)
			return
		}
		for _, op := range []func() error{
			func() error { _, err := p.Codings("system", "systemVersion"); return err },
			func() error { _, err := p.String("url"); return err },
			func() error { _, err := p.Strings("property"); return err },
			func() error { _, err := p.Int("count", 0); return err },
			func() error { _, err := p.Object("resource"); return err },
			func() error { return p.Only("code", "system", "coding") },
		} {
			if err := op(); err != nil {
				checkSafe(t, err, body)
			}
		}
	})
}

// FuzzQuery is FuzzParameters for GET query strings.
func FuzzQuery(f *testing.F) {
	f.Add("code=relapse&system=http%3A%2F%2Fexample.org&display=Relapse")
	f.Add("url=urn:a&count=3&offset=x")
	f.Add("code=a&code=b&coding=c")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, err := FromQuery(q)
		if err != nil {
			checkSafe(t, err, []byte(raw))
			return
		}
		if _, err := p.Codings("system", "version"); err != nil {
			checkSafe(t, err, []byte(raw))
		}
		if _, err := p.Int("count", 0); err != nil {
			checkSafe(t, err, []byte(raw))
		}
		if err := p.Only("code"); err != nil {
			checkSafe(t, err, []byte(raw))
		}
	})
}

// FuzzTerminologyResource parses a body as a CodeSystem and a ValueSet
// (stored terminology is written by users too) and expands the value
// set over that code system: bounded, no panic.
func FuzzTerminologyResource(f *testing.F) {
	files, _ := filepath.Glob("testdata/r4/*Set*.json")
	cs, _ := filepath.Glob("testdata/r4/CodeSystem-*.json")
	for _, p := range append(files, cs...) {
		if b, err := os.ReadFile(p); err == nil && len(b) < 40000 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		src := &dirSource{cs: map[string]*CodeSystem{}, vs: map[string]*ValueSet{}, hidden: map[string]bool{}}
		c, cerr := ParseCodeSystem(body)
		if cerr == nil {
			src.cs[c.URL] = c
			for _, code := range c.Codes() {
				if _, err := Lookup(c, code, nil); err != nil {
					t.Fatalf("lookup of a defined code: %v", err)
				}
			}
		}
		body = bytes.Replace(body, []byte(`"CodeSystem"`), []byte(`"ValueSet"`), 1)
		v, err := ParseValueSet(body)
		if err != nil {
			return
		}
		src.vs[v.URL] = v
		if _, err := Expand(t.Context(), src, v, ExpandOptions{Count: 10}); err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("untyped error: %v", err)
			}
		}
	})
}

// quotedName is a parameter name as SafeName quotes it.
var quotedName = regexp.MustCompile(`"[A-Za-z_][A-Za-z0-9_:.-]{0,63}"`)

func checkSafe(t *testing.T, err error, input []byte) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("untyped error: %v", err)
	}
	// Parameter names may be echoed (quoted, when they look like
	// names); nothing else from the input. A value longer than a few
	// characters that appears in the message came from the input.
	msg := quotedName.ReplaceAllString(e.Msg, "")
	for _, w := range strings.FieldsFunc(string(input), func(r rune) bool { return r == '"' || r == '&' || r == '=' }) {
		if len(w) > 12 && strings.Contains(msg, w) {
			t.Fatalf("message %q echoes input %q", e.Msg, w)
		}
	}
}
