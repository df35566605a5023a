package authz

import (
	"encoding/json"
	"strings"
	"testing"
)

const maskTestClaim = `{"resourceType":"Claim","id":"c","status":"active",
 "text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Claim text</div>"},
 "identifier":[{"system":"urn:claims","value":"c-1"},{"type":{"text":"SSN"},"value":"999-45-7835"}],
 "patient":{"reference":"Patient/p","identifier":{"system":"http://hl7.org/fhir/sid/us-ssn","value":"999-45-7835"}},
 "provider":{"reference":"Organization/o","identifier":{"system":"urn:npi","value":"npi-1"}},
 "contained":[{"resourceType":"RelatedPerson","id":"rp","patient":{"reference":"Patient/p"},
   "identifier":[{"system":"urn:oid:2.16.840.1.113883.4.1","value":"999-45-7835"}],
   "extension":[{"url":"urn:note","valueString":"999-45-7835"}]},
  {"resourceType":"Coverage","id":"cov","subscriber":{"identifier":{"type":{"coding":[{"code":"SB"}]},"value":"999-45-7835"}}}],
 "insurance":[{"sequence":1,"coverage":{"reference":"#cov","identifier":{"type":{"coding":[{"code":"SS"}]},"value":"999-45-7835"}}}],
 "extension":[{"url":"urn:kept","valueString":"claim note"}]}`

func TestRedactCarrier(t *testing.T) {
	out, err := Redact([]byte(maskTestClaim))
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if strings.Contains(s, "999-45-7835") {
		t.Errorf("a carrier's masked view shows the SSN: %s", s)
	}
	// The carrier's own narrative, extensions, unmasked identifiers and
	// references stay.
	for _, good := range []string{"Claim text", "claim note", "c-1", "npi-1", `"Patient/p"`, `"#cov"`, `"REDACTED"`} {
		if !strings.Contains(s, good) {
			t.Errorf("a carrier's masked view lacks %s: %s", good, s)
		}
	}
	if !MayCarryIdentifiers("Claim", []byte(maskTestClaim)) || MayCarryIdentifiers("Observation", []byte(`{"resourceType":"Observation","subject":{"reference":"Patient/p"}}`)) {
		t.Error("MayCarryIdentifiers")
	}
	// Nothing to hide: the body comes back as it was, unlabelled.
	plain := []byte(`{"resourceType":"Claim","patient":{"reference":"Patient/p","identifier":{"system":"urn:mrn","value":"m"}}}`)
	if out, err := Redact(plain); err != nil || string(out) != string(plain) {
		t.Errorf("Redact of a carrier without masked identifiers = %s, %v", out, err)
	}
}

func TestPreserveCarrier(t *testing.T) {
	checkPreserve(t, []byte(maskTestClaim))
	view, err := Redact([]byte(maskTestClaim))
	if err != nil {
		t.Fatal(err)
	}
	var next map[string]any
	if err := json.Unmarshal(view, &next); err != nil {
		t.Fatal(err)
	}
	// The caller edits what it sees, and tries to set masked values.
	next["status"] = "cancelled"
	next["provider"].(map[string]any)["identifier"] = map[string]any{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-00-0001"}
	ins := next["insurance"].([]any)[0].(map[string]any)
	ins["coverage"].(map[string]any)["reference"] = "#cov" // unchanged target
	if err := Preserve([]byte(maskTestClaim), next); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(next)
	s := string(b)
	if n := strings.Count(s, "999-45-7835"); n != 6 {
		t.Errorf("the stored version keeps the SSN %d times, want 6: %s", n, s)
	}
	if strings.Contains(s, "999-00-0001") || strings.Contains(s, "REDACTED") || !strings.Contains(s, "cancelled") {
		t.Errorf("Preserve: %s", s)
	}
	// A reference moved to another target loses the old identifier.
	json.Unmarshal(view, &next)
	next["patient"] = map[string]any{"reference": "Patient/other"}
	if err := Preserve([]byte(maskTestClaim), next); err != nil {
		t.Fatal(err)
	}
	if p := next["patient"].(map[string]any); p["identifier"] != nil {
		t.Errorf("a re-targeted reference kept the old identifier: %v", p)
	}
}

// TestMaskedSystemVariants: the pentest's spellings of masked systems.
func TestMaskedSystemVariants(t *testing.T) {
	for sys, want := range map[string]bool{
		"http://hl7.org/fhir/sid/us-ssn":      true,
		"HTTP://HL7.ORG/FHIR/SID/US-SSN":      true,
		"http://hl7.org/fhir/sid/us-ssn/":     true,
		" http://hl7.org/fhir/sid/us-ssn ":    true,
		"urn:oid:2.16.840.1.113883.4.1":       true,
		"urn:oid:2.16.840.1.113883.4.3.25":    true, // Massachusetts driver's licence
		"urn:oid:2.16.840.1.113883.4.330.840": true, // US passport
		"urn:oid:2.16.840.1.113883.4.3.":      false,
		"urn:oid:2.16.840.1.113883.4.10":      false,
		"http://hl7.org/fhir/sid/us-npi":      false,
		"urn:mrn":                             false,
		"":                                    false,
	} {
		if got := MaskedSystem(sys); got != want {
			t.Errorf("MaskedSystem(%q) = %v, want %v", sys, got, want)
		}
	}
}
