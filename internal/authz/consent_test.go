package authz

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func consentJSONOf(t testing.TB, provision map[string]any) []byte {
	t.Helper()
	c := map[string]any{
		"resourceType": "Consent", "id": "c1", "status": "active",
		"scope":     map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}}},
		"patient":   map[string]any{"reference": "Patient/p1"},
		"provision": provision,
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConsentEvaluate(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	dr := []string{"Practitioner/dr"}
	other := []string{"Practitioner/other"}
	actor := func(ref string) []any { return []any{map[string]any{"reference": map[string]any{"reference": ref}}} }
	label := func(code string) []any { return []any{map[string]any{"code": code}} }
	for _, tc := range []struct {
		name         string
		provision    map[string]any
		req          ConsentRequest
		deny, permit bool
	}{
		{"opt-out denies everyone", map[string]any{"type": "deny"}, ConsentRequest{Actors: dr, Type: "Observation"}, true, false},
		{"general permit is not explicit", map[string]any{"type": "permit"}, ConsentRequest{Actors: dr, Type: "Observation"}, false, false},
		{"deny one actor", map[string]any{"type": "permit", "provision": []any{map[string]any{"type": "deny", "actor": actor("Practitioner/dr")}}}, ConsentRequest{Actors: dr, Type: "Observation"}, true, false},
		{"deny one actor, not another", map[string]any{"type": "permit", "provision": []any{map[string]any{"type": "deny", "actor": actor("Practitioner/dr")}}}, ConsentRequest{Actors: other, Type: "Observation"}, false, false},
		{"deny a label", map[string]any{"type": "permit", "provision": []any{map[string]any{"type": "deny", "securityLabel": label("PSY")}}}, ConsentRequest{Actors: dr, Type: "Observation", Labels: []string{"PSY"}}, true, false},
		{"deny a label, unlabelled passes", map[string]any{"type": "permit", "provision": []any{map[string]any{"type": "deny", "securityLabel": label("PSY")}}}, ConsentRequest{Actors: dr, Type: "Observation"}, false, false},
		{"deny a class", map[string]any{"type": "permit", "provision": []any{map[string]any{"type": "deny", "class": []any{map[string]any{"code": "Condition"}}}}}, ConsentRequest{Actors: dr, Type: "Condition"}, true, false},
		{"deny all but my doctor", map[string]any{"type": "deny", "provision": []any{map[string]any{"type": "permit", "actor": actor("Practitioner/dr")}}}, ConsentRequest{Actors: dr, Type: "Observation"}, false, true},
		{"deny all but my doctor: others denied", map[string]any{"type": "deny", "provision": []any{map[string]any{"type": "permit", "actor": actor("Practitioner/dr")}}}, ConsentRequest{Actors: other, Type: "Observation"}, true, false},
		{"permit Part 2 to my doctor", map[string]any{"type": "permit", "provision": []any{map[string]any{"type": "permit", "actor": actor("Practitioner/dr"), "securityLabel": label("42CFRPart2")}}}, ConsentRequest{Actors: dr, Type: "Observation", Labels: []string{"42CFRPart2"}}, false, true},
		{"expired deny", map[string]any{"type": "permit", "provision": []any{map[string]any{"type": "deny", "period": map[string]any{"end": "2026-01-01"}}}}, ConsentRequest{Actors: dr, Type: "Observation"}, false, false},
		{"future deny", map[string]any{"type": "permit", "provision": []any{map[string]any{"type": "deny", "period": map[string]any{"start": "2027"}}}}, ConsentRequest{Actors: dr, Type: "Observation"}, false, false},
		{"current deny", map[string]any{"type": "permit", "provision": []any{map[string]any{"type": "deny", "period": map[string]any{"start": "2026-05", "end": "2026-06-01"}}}}, ConsentRequest{Actors: dr, Type: "Observation"}, true, false},
		{"deny wins among exceptions", map[string]any{"type": "deny", "provision": []any{
			map[string]any{"type": "permit", "actor": actor("Practitioner/dr")},
			map[string]any{"type": "deny", "securityLabel": label("HIV")},
		}}, ConsentRequest{Actors: dr, Type: "Observation", Labels: []string{"HIV"}}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConsent(consentJSONOf(t, tc.provision))
			if err != nil {
				t.Fatal(err)
			}
			tc.req.Now = now
			r := c.Evaluate(tc.req)
			deny, permit := r.Deny, r.Permit
			if deny != tc.deny || permit != tc.permit {
				t.Fatalf("Evaluate = deny %v permit %v, want %v %v", deny, permit, tc.deny, tc.permit)
			}
		})
	}
}

func TestConsentNotEnforced(t *testing.T) {
	b := consentJSONOf(t, map[string]any{"type": "deny"})
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	m["status"] = "inactive"
	b, _ = json.Marshal(m)
	c, err := ParseConsent(b)
	if err != nil {
		t.Fatal(err)
	}
	if c.Evaluate(ConsentRequest{Type: "Observation", Now: time.Now()}).Deny {
		t.Fatal("an inactive consent denied")
	}
	m["status"] = "active"
	m["scope"] = map[string]any{"coding": []any{map[string]any{"code": "research"}}}
	b, _ = json.Marshal(m)
	c, _ = ParseConsent(b)
	if c.Evaluate(ConsentRequest{Type: "Observation", Now: time.Now()}).Deny {
		t.Fatal("a research consent denied (only patient-privacy is enforced)")
	}
}

func TestParseConsentLimits(t *testing.T) {
	deep := map[string]any{"type": "deny"}
	for range maxProvisionDepth + 1 {
		deep = map[string]any{"type": "permit", "provision": []any{deep}}
	}
	for name, b := range map[string][]byte{
		"deep":        consentJSONOf(t, deep),
		"not json":    []byte("{"),
		"not consent": []byte(`{"resourceType":"Patient"}`),
		"bad type":    consentJSONOf(t, map[string]any{"type": "maybe"}),
	} {
		if _, err := ParseConsent(b); !errors.Is(err, ErrUndecidable) {
			t.Errorf("%s: err = %v, want ErrUndecidable", name, err)
		}
	}
}

func seeds(f *testing.F, glob string) {
	files, _ := filepath.Glob(filepath.Join("testdata", glob))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseConsent(f *testing.F) {
	seeds(f, "consent-*.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConsent(b)
		if err != nil {
			if !errors.Is(err, ErrUndecidable) {
				t.Fatalf("error %v does not wrap ErrUndecidable", err)
			}
			return
		}
		c.Evaluate(ConsentRequest{Actors: []string{"Practitioner/x"}, Type: "Observation", Labels: []string{"PSY"}, Now: time.Now()})
	})
}

func FuzzResourceLabels(f *testing.F) {
	seeds(f, "*.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		l, c, err := ResourceLabels(b, true)
		if err == nil && (len(l) > MaxLabels || len(c) > MaxLabels) {
			t.Fatalf("%d labels, %d categories: over the bound", len(l), len(c))
		}
	})
}
