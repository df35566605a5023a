package deid_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/deid"
)

// identifyingKeys are the properties whose string values the fuzz test
// treats as identifying: wherever they appear, none may come out.
var identifyingKeys = map[string]bool{
	"family": true, "given": true, "prefix": true, "suffix": true, "line": true, "city": true, "district": true,
	"postalCode": true, "value": true, "id": true, "div": true, "data": true, "url": true, "display": true,
	"text": true, "comment": true, "description": true, "reference": true, "fullUrl": true, "birthDate": true,
	"serialNumber": true, "deviceIdentifier": true, "lotNumber": true, "name": true,
}

// pseudonymShape matches what the transformer writes for ids and
// identifier values (random under the export key), which a short
// input string may occur in by chance.
var pseudonymShape = regexp.MustCompile(`^(urn:uuid:|#|[A-Za-z]+/)?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$`)

// FuzzTransform: whatever the input, Transform never panics; its output
// is one JSON object; no string the input held under an identifying key
// comes out (unless the input also held it somewhere that is kept, such
// as a code system); and no date finer than a year does.
func FuzzTransform(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"resourceType":"Patient","name":[{"family":"http://loinc.org"}],"contained":[{"resourceType":"Patient","contained":[]}]}`))
	f.Add([]byte(`{"resourceType":"Observation","valueQuantity":{"value":1e400,"code":"a"}}`))
	// The outside tester's leaks (leaks_test.go).
	f.Add([]byte(leakObservation))
	f.Add([]byte(leakQuestionnaireResponse))
	f.Add([]byte(leakPatient))
	f.Add([]byte(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8302-2","display":"Born on 1930-05-17"}]},"valueQuantity":{"value":3,"unit":"Call 555-867-5309","system":"http://unitsofmeasure.org","code":"{x}"}}`))
	tr, err := deid.New(deid.Options{})
	if err != nil {
		f.Fatal(err)
	}
	cutoffYear := time.Now().UTC().Year() - 90
	f.Fuzz(func(t *testing.T, body []byte) {
		var h struct {
			ResourceType string `json:"resourceType"`
		}
		_ = json.Unmarshal(body, &h)
		out, err := tr.Transform(h.ResourceType, body)
		if err != nil {
			if !errors.Is(err, deid.ErrDropped) && !errors.Is(err, deid.ErrInput) {
				t.Fatalf("an error of no documented kind: %v", err)
			}
			return
		}
		var outTree map[string]any
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		if err := dec.Decode(&outTree); err != nil {
			t.Fatalf("output is not a JSON object: %v", err)
		}
		var in any
		dec = json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if dec.Decode(&in) != nil {
			return
		}
		secret, other := map[string]bool{}, []string{}
		collect(in, "", secret, &other)
		outStrings := []string{}
		collect(outTree, "", map[string]bool{}, &outStrings)
		checkFreeTextAndDates(t, outTree, "", cutoffYear)
		for s := range secret {
			if len(s) < 6 || containsAny(other, s) {
				continue
			}
			for _, o := range outStrings {
				if strings.Contains(o, s) && !pseudonymShape.MatchString(o) {
					t.Fatalf("an identifying string of %d bytes came out", len(s))
				}
			}
		}
		for _, o := range outStrings {
			if regexp.MustCompile(`^[0-9]{4}-[0-9]{2}`).MatchString(o) {
				t.Fatalf("a date finer than the year came out")
			}
		}
	})
}

// exactDate is the shape of a FHIR date or dateTime.
var exactDate = regexp.MustCompile(`^([0-9]{4})(-[0-9]{2}(-[0-9]{2}(T.*)?)?)?$`)

// timeOfDay is the shape of a FHIR time.
var timeOfDay = regexp.MustCompile(`^[0-9]{2}:[0-9]{2}`)

// checkFreeTextAndDates fails if v holds a display (outside
// meta.security, where the transformer writes its own marks), a
// CodeableConcept.text, a time of day, or a date (outside a code) whose
// year indicates an age over 89.
func checkFreeTextAndDates(t *testing.T, v any, key string, cutoff int) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if k == "security" && key == "meta" {
				continue
			}
			if k == "display" || k == "text" {
				t.Fatalf("a %s came out", k)
			}
			checkFreeTextAndDates(t, c, k, cutoff)
		}
	case []any:
		for _, c := range x {
			checkFreeTextAndDates(t, c, key, cutoff)
		}
	case string:
		if timeOfDay.MatchString(x) {
			t.Fatalf("a time of day came out")
		}
		if m := exactDate.FindStringSubmatch(x); m != nil && key != "code" {
			if y, _ := strconv.Atoi(m[1]); y <= cutoff {
				t.Fatalf("a date of a year indicating an age over 89 came out")
			}
		}
	}
}

// collect puts every string in v under an identifying key into secret,
// and every other string (and every object key) into other.
func collect(v any, key string, secret map[string]bool, other *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			*other = append(*other, k)
			collect(c, k, secret, other)
		}
	case []any:
		for _, c := range x {
			collect(c, key, secret, other)
		}
	case string:
		if identifyingKeys[key] {
			secret[x] = true
		} else {
			*other = append(*other, x)
		}
	}
}

func containsAny(list []string, s string) bool {
	for _, o := range list {
		if strings.Contains(o, s) {
			return true
		}
	}
	return false
}
