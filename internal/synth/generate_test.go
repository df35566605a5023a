package synth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testStart = time.Date(2025, time.June, 30, 9, 30, 0, 0, time.UTC)

// collect runs Generate and keeps copies of every bundle.
func collect(t *testing.T, opt Options) (names []string, bundles [][]byte) {
	t.Helper()
	err := Generate(t.Context(), opt, func(name string, b []byte) error {
		names = append(names, name)
		bundles = append(bundles, bytes.Clone(b))
		return nil
	})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return names, bundles
}

type testBundle struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Entry        []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Request  struct {
			Method      string `json:"method"`
			URL         string `json:"url"`
			IfNoneExist string `json:"ifNoneExist"`
		} `json:"request"`
	} `json:"entry"`
}

func parseBundle(t *testing.T, b []byte) testBundle {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("bundle is not valid JSON")
	}
	var tb testBundle
	if err := json.Unmarshal(b, &tb); err != nil {
		t.Fatalf("decoding bundle: %v", err)
	}
	return tb
}

func TestGenerateDeterministic(t *testing.T) {
	digest := func(opt Options) string {
		h := sha256.New()
		_, bundles := collect(t, opt)
		for _, b := range bundles {
			h.Write(b)
		}
		return fmt.Sprintf("%x", h.Sum(nil))
	}
	opt := Options{Patients: 25, Seed: 42, Start: testStart}
	a, b := digest(opt), digest(opt)
	if a != b {
		t.Fatalf("two runs with the same options differ: %s != %s", a, b)
	}
	opt.Seed = 43
	if c := digest(opt); c == a {
		t.Fatalf("seed 42 and 43 give the same output")
	}
	// Patient i does not depend on how many patients follow it.
	_, few := collect(t, Options{Patients: 3, Seed: 42, Start: testStart})
	_, many := collect(t, Options{Patients: 10, Seed: 42, Start: testStart})
	for i := range few {
		if !bytes.Equal(few[i], many[i]) {
			t.Fatalf("bundle %d differs between runs of 3 and 10 patients", i)
		}
	}
}

func TestGenerateCounts(t *testing.T) {
	const patients = 50
	names, bundles := collect(t, Options{Patients: patients, Seed: 7, Start: testStart})
	if len(bundles) != patients+1 {
		t.Fatalf("got %d bundles, want %d", len(bundles), patients+1)
	}
	if names[0] != SharedName {
		t.Errorf("first bundle is %q, want %q", names[0], SharedName)
	}
	if !sortedStrings(names) {
		t.Errorf("names do not sort in emission order: %v", names[:3])
	}

	shared := parseBundle(t, bundles[0])
	if shared.Type != "batch" {
		t.Errorf("shared bundle type %q, want batch", shared.Type)
	}
	sharedTypes := map[string]int{}
	for _, e := range shared.Entry {
		sharedTypes[e.Request.URL]++
		if !strings.HasPrefix(e.Request.IfNoneExist, "identifier=") {
			t.Errorf("%s entry without ifNoneExist", e.Request.URL)
		}
	}
	for _, typ := range []string{"Organization", "Location", "Practitioner", "PractitionerRole"} {
		if sharedTypes[typ] == 0 {
			t.Errorf("shared bundle has no %s", typ)
		}
	}

	total := map[string]int{}
	for i, b := range bundles[1:] {
		tb := parseBundle(t, b)
		if tb.Type != "transaction" {
			t.Fatalf("patient bundle %d has type %q", i, tb.Type)
		}
		per := map[string]int{}
		for _, e := range tb.Entry {
			per[e.Request.URL]++
			total[e.Request.URL]++
		}
		if per["Patient"] != 1 || per["CareTeam"] != 1 {
			t.Errorf("patient %d: %d Patient, %d CareTeam; want 1 each", i, per["Patient"], per["CareTeam"])
		}
		if n := per["Encounter"]; n < minEncounters || n > maxEncounters {
			t.Errorf("patient %d: %d encounters, want %d..%d", i, n, minEncounters, maxEncounters)
		}
		if per["Observation"] < 7*per["Encounter"] {
			t.Errorf("patient %d: %d observations for %d encounters; want 7 vital signs each", i, per["Observation"], per["Encounter"])
		}
	}
	for _, typ := range []string{"Condition", "MedicationRequest", "AllergyIntolerance", "Procedure", "Immunization"} {
		if total[typ] == 0 {
			t.Errorf("no %s in %d patients", typ, patients)
		}
	}
	t.Logf("resources in %d patients: %v", patients, total)
}

func sortedStrings(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
}

// TestGenerateReferences checks that every reference resolves to an entry of
// the same bundle (urn:uuid) or conditionally to an identifier that the shared
// directory creates.
func TestGenerateReferences(t *testing.T) {
	_, bundles := collect(t, Options{Patients: 30, Seed: 3, Start: testStart})
	idents := map[string]bool{} // "Type?identifier=system|value"
	shared := parseBundle(t, bundles[0])
	for _, e := range shared.Entry {
		idents[e.Request.URL+"?"+e.Request.IfNoneExist] = true
	}
	check := func(where string, tb testBundle, local map[string]bool) {
		for _, e := range tb.Entry {
			var res any
			if err := json.Unmarshal(e.Resource, &res); err != nil {
				t.Fatal(err)
			}
			walkRefs(res, func(ref string) {
				switch {
				case strings.HasPrefix(ref, "urn:uuid:"):
					if !local[ref] {
						t.Errorf("%s: %s refers to %s, not in the bundle", where, e.Request.URL, ref)
					}
				case strings.Contains(ref, "?identifier="):
					if !idents[ref] {
						t.Errorf("%s: %s has conditional reference %s that the directory does not create", where, e.Request.URL, ref)
					}
				default:
					t.Errorf("%s: %s has unexpected reference %q", where, e.Request.URL, ref)
				}
			})
		}
	}
	check("shared", shared, nil)
	for i, b := range bundles[1:] {
		tb := parseBundle(t, b)
		local := map[string]bool{}
		for _, e := range tb.Entry {
			if !strings.HasPrefix(e.FullURL, "urn:uuid:") {
				t.Fatalf("patient %d: fullUrl %q is not a urn:uuid", i, e.FullURL)
			}
			if local[e.FullURL] {
				t.Fatalf("patient %d: duplicate fullUrl %s", i, e.FullURL)
			}
			local[e.FullURL] = true
		}
		check(fmt.Sprintf("patient %d", i), tb, local)
	}
}

func walkRefs(v any, fn func(string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "reference" {
				fn(s)
				continue
			}
			walkRefs(e, fn)
		}
	case []any:
		for _, e := range x {
			walkRefs(e, fn)
		}
	}
}

func TestGenerateNoFuture(t *testing.T) {
	_, bundles := collect(t, Options{Patients: 40, Seed: 11, Start: testStart})
	re := func(s string) (time.Time, bool) {
		for _, layout := range []string{time.RFC3339, time.DateOnly} {
			if ts, err := time.Parse(layout, s); err == nil {
				return ts, true
			}
		}
		return time.Time{}, false
	}
	for i, b := range bundles {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		var walk func(any)
		walk = func(v any) {
			switch x := v.(type) {
			case map[string]any:
				for _, e := range x {
					walk(e)
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			case string:
				if ts, ok := re(x); ok && ts.After(testStart) {
					t.Errorf("bundle %d: date %s is after Start %s", i, x, testStart.Format(time.RFC3339))
				}
			}
		}
		walk(v)
	}
}

func TestGenerateOptionsAndErrors(t *testing.T) {
	if err := Generate(t.Context(), Options{Patients: -1}, nil); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("Patients -1: got %v, want ErrInvalidOptions", err)
	}
	if err := Generate(t.Context(), Options{Patients: MaxPatients + 1}, nil); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("Patients > max: got %v, want ErrInvalidOptions", err)
	}
	// The zero Start is DefaultStart, not the wall clock.
	_, a := collect(t, Options{Patients: 2})
	_, b := collect(t, Options{Patients: 2, Start: DefaultStart})
	if !bytes.Equal(a[2], b[2]) {
		t.Errorf("zero Start differs from DefaultStart")
	}

	stop := errors.New("stop")
	calls := 0
	err := Generate(t.Context(), Options{Patients: 10}, func(string, []byte) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Errorf("emit error: got %v after %d calls, want stop after 3", err, calls)
	}

	ctx, cancel := context.WithCancel(t.Context())
	calls = 0
	err = Generate(ctx, Options{Patients: 10}, func(string, []byte) error {
		calls++
		if calls == 2 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 2 {
		t.Errorf("cancel: got %v after %d calls, want context.Canceled after 2", err, calls)
	}
}

// TestGenerateDump writes the first bundles to a directory when
// SYNTH_DUMP is set, for eyeballing output; it never fails.
func TestGenerateDump(t *testing.T) {
	dir := os.Getenv("SYNTH_DUMP")
	if dir == "" {
		t.Skip("set SYNTH_DUMP=DIR to write sample bundles")
	}
	err := Generate(t.Context(), Options{Patients: 3, Seed: 1, Start: testStart}, func(name string, b []byte) error {
		return os.WriteFile(filepath.Join(dir, name), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func BenchmarkGenerate(b *testing.B) {
	var bytesOut int64
	patients := 0
	for b.Loop() {
		err := Generate(b.Context(), Options{Patients: 100, Seed: int64(patients), Start: testStart}, func(_ string, bundle []byte) error {
			bytesOut += int64(len(bundle))
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		patients += 100
	}
	b.ReportMetric(float64(patients)/b.Elapsed().Seconds(), "patients/s")
	b.ReportMetric(float64(bytesOut)/float64(patients), "bytes/patient")
}
