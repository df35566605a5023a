package authz

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const maskTestPatient = `{"resourceType":"Patient","id":"p",
 "text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">SSN 999-45-7835</div>"},
 "contained":[{"resourceType":"RelatedPerson","id":"m","patient":{"reference":"#"},
   "identifier":[{"system":"http://hl7.org/fhir/sid/us-ssn","value":"999-45-7835"},{"system":"urn:x","value":"rp-1"}],
   "extension":[{"url":"urn:note","valueString":"999-45-7835"}]}],
 "extension":[{"url":"urn:note","valueString":"SSN 999-45-7835"},
   {"url":"urn:complex","extension":[{"url":"a","valueCoding":{"code":"x"}},{"url":"text","valueString":"999-45-7835"}]},
   {"url":"urn:id","valueIdentifier":{"type":{"text":"Social Security Number"},"value":"999-45-7835"}},
   {"url":"urn:kept","valueCode":"ok"},
   {"url":"urn:kept-id","valueIdentifier":{"system":"urn:mrn","value":"m-1"}}],
 "modifierExtension":[{"url":"urn:mod","valueBoolean":true}],
 "identifier":[{"system":"urn:mrn","value":"m-1"},
   {"type":{"text":"SSN"},"value":"999-45-7835"},
   {"type":{"coding":[{"system":"urn:local","code":"X","display":"Driver's Licence"}]},"value":"D1"},
   {"type":{"text":"drivers license number"},"value":"D2"},
   {"type":{"text":"Passport"},"value":"P1"},
   {"type":{"text":"assn"},"value":"kept-1"}],
 "telecom":[{"system":"phone","value":"555-0100"}]}`

func TestRedactCopies(t *testing.T) {
	out, err := Redact([]byte(maskTestPatient))
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, bad := range []string{"999-45-7835", `"D1"`, `"D2"`, `"P1"`, "urn:note", "urn:complex"} {
		if strings.Contains(s, bad) {
			t.Errorf("redacted body contains %s: %s", bad, s)
		}
	}
	for _, good := range []string{"m-1", "rp-1", "kept-1", "urn:kept", "urn:kept-id", "urn:mod", "555-0100", `"status":"empty"`, `"REDACTED"`} {
		if !strings.Contains(s, good) {
			t.Errorf("redacted body lacks %s: %s", good, s)
		}
	}
	// Nothing to hide: unchanged, unlabelled.
	plain := `{"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"1"}]}`
	if out, err := Redact([]byte(plain)); err != nil || string(out) != plain {
		t.Errorf("Redact(plain) = %s, %v", out, err)
	}
	if _, err := Redact([]byte(`[1]`)); err == nil {
		t.Error("Redact of a non-object succeeded")
	}
}

func TestMaskedPhrase(t *testing.T) {
	for s, want := range map[string]bool{"SSN": true, "ssn #": true, "Social Security Number": true, "SOCIAL-SECURITY": true,
		"Driver's License": true, "driver’s licence": true, "Driving Licence No.": true, "passport number": true, "SSNs": true,
		"assn": false, "MRN": false, "": false, "driver": false, "security": false} {
		if got := maskedPhrase(s); got != want {
			t.Errorf("maskedPhrase(%q) = %v, want %v", s, got, want)
		}
	}
}

// checkPreserve: the caller's view of cur, edited, and carried over,
// keeps exactly what the mask hid in cur.
func checkPreserve(t *testing.T, cur []byte) {
	view, err := Redact(cur)
	if err != nil {
		return
	}
	var next, old map[string]any
	if json.Unmarshal(view, &next) != nil || json.Unmarshal(cur, &old) != nil || next == nil {
		return
	}
	// The caller adds a masked identifier of its own.
	if ids, isList := next["identifier"].([]any); isList || next["identifier"] == nil {
		next["identifier"] = append(ids, map[string]any{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "caller"})
	}
	if err := Preserve(cur, next); err != nil {
		t.Fatalf("Preserve: %v", err)
	}
	hidden := func(res map[string]any) []any {
		ids, _ := res["identifier"].([]any)
		return keep(ids, func(x any) bool { m, _ := x.(map[string]any); return sensitiveIdentifier(m) })
	}
	if a, b := hidden(next), hidden(old); !reflect.DeepEqual(a, b) && len(a)+len(b) > 0 {
		t.Fatalf("masked identifiers: got %v, want %v", a, b)
	}
	if !reflect.DeepEqual(next["text"], old["text"]) {
		t.Fatalf("narrative: got %v, want %v", next["text"], old["text"])
	}
	if redactedLabel(next["meta"]) && !redactedLabel(old["meta"]) {
		t.Fatal("the REDACTED label of the view was kept")
	}
	// Seen again masked, the result is the view (identifiers reordered
	// aside): nothing the caller could see was lost.
	again, err := json.Marshal(next)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := Redact(again)
	if err != nil {
		t.Fatal(err)
	}
	var a, b map[string]any
	_ = json.Unmarshal(view, &a)
	_ = json.Unmarshal(v2, &b)
	delete(a, "meta")
	delete(b, "meta")
	// Empty lists (not FHIR) may be dropped.
	if !reflect.DeepEqual(prune(a), prune(b)) {
		t.Fatalf("view changed by a round trip:\n%s\n%s", view, v2)
	}
}

func TestPreserve(t *testing.T) {
	checkPreserve(t, []byte(maskTestPatient))
	if err := Preserve([]byte(`nope`), map[string]any{}); err == nil {
		t.Error("Preserve with a current version that is not JSON succeeded")
	}
}

func FuzzRedactPreserve(f *testing.F) {
	f.Add([]byte(maskTestPatient))
	f.Add([]byte(maskTestClaim))
	f.Add([]byte(`{"resourceType":"Claim","a":[{"identifier":{"system":"http://hl7.org/fhir/sid/us-ssn"}},{"b":{"identifier":{"type":{"text":"ssn"}}}}],"contained":[{"resourceType":"Person","identifier":[{"type":{"coding":[{"code":"DL"}]}}]}]}`))
	f.Add([]byte(`{"identifier":[{"system":"http://hl7.org/fhir/sid/us-ssn","value":"1"}],"meta":{"security":[{"system":"` + SecuritySystem + `","code":"REDACTED"}]}}`))
	f.Add([]byte(`{"contained":[{"resourceType":"Patient","id":"a","text":{"div":"x"}},{"resourceType":"Patient","id":"a"}],"extension":[{"extension":[{"extension":[{"valueMarkdown":"x"}]}]}]}`))
	f.Add([]byte(`{"identifier":[null,1,"x",{"type":{"coding":[{"code":"SS"},null]}}],"contained":[null,{"id":1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkPreserve(t, b)
	})
}

// prune removes empty lists from x, recursively.
func prune(x any) any {
	switch v := x.(type) {
	case map[string]any:
		for k, y := range v {
			if l, ok := y.([]any); ok && len(l) == 0 {
				delete(v, k)
				continue
			}
			v[k] = prune(y)
		}
	case []any:
		for i, y := range v {
			v[i] = prune(y)
		}
	}
	return x
}
