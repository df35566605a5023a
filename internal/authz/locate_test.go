package authz

import (
	"encoding/json"
	"testing"

	"github.com/phivault/phivault/internal/authn"
)

// TestLocatePolicy: the default policies let a physician's or a nurse's
// session locate a patient they have no relationship with, and nobody
// else; never a patient whose Patient carries a sensitive, Part 2 or
// VIP label, nor one whose consent denies the caller (ADR 0035).
func TestLocatePolicy(t *testing.T) {
	pol, err := Defaults()
	if err != nil {
		t.Fatal(err)
	}
	type who struct {
		kind, fhirUser string
		roles          []string
	}
	doc := who{"session", "Practitioner/d", []string{"physician"}}
	nurse := who{"session", "Practitioner/n", []string{"nurse"}}
	consent := json.RawMessage(`{"resourceType":"Consent","status":"active","scope":{"coding":[{"code":"patient-privacy"}]},` +
		`"patient":{"reference":"Patient/p"},"provision":{"type":"deny"}}`)
	cases := []struct {
		name     string
		who      who
		careTeam bool
		grant    bool
		labels   []string
		consents []json.RawMessage
		allow    bool
	}{
		{name: "physician, stranger", who: doc, allow: true},
		{name: "nurse, stranger", who: nurse, allow: true},
		{name: "physician, own patient (found by search)", who: doc, careTeam: true},
		{name: "physician under a grant (found by search)", who: doc, grant: true},
		{name: "physician token", who: who{"token", "Practitioner/d", []string{"physician"}}},
		{name: "physician's SMART app", who: who{"smart-app", "Practitioner/d", []string{"physician"}}},
		{name: "front desk", who: who{"session", "", []string{"front-desk"}}},
		{name: "billing", who: who{"session", "", []string{"billing"}}},
		{name: "privacy officer", who: who{"session", "", []string{"privacy-officer"}}},
		{name: "auditor", who: who{"session", "", []string{"auditor"}}},
		{name: "security admin", who: who{"session", "", []string{"security-admin"}}},
		{name: "researcher", who: who{"session", "", []string{"researcher"}}},
		{name: "patient", who: who{"session", "Patient/q", []string{"patient"}}},
		{name: "system token", who: who{"token", "", []string{"system"}}},
		{name: "restricted patient", who: doc, labels: []string{"R"}},
		{name: "psychiatry patient", who: nurse, labels: []string{"PSY"}},
		{name: "Part 2 patient", who: doc, labels: []string{"42CFRPart2"}},
		{name: "VIP patient", who: doc, labels: []string{"VIP"}},
		{name: "consent denies", who: doc, consents: []json.RawMessage{consent}},
	}
	for _, c := range cases {
		var k Case
		k.Name, k.Action, k.Expect = c.name, "locate", "deny"
		if c.allow {
			k.Expect = "allow"
		}
		k.Principal.Kind, k.Principal.ID, k.Principal.Roles, k.Principal.FHIRUser = authn.Kind(c.who.kind), "u", c.who.roles, c.who.fhirUser
		if c.careTeam {
			k.Relations.CareTeam = []string{"Patient/p"}
		}
		if c.grant {
			k.Relations.Grants = []string{"Patient/p"}
		}
		k.Patient.Labels, k.Patient.Consents = c.labels, c.consents
		k.Resource = Target{Type: "Patient", ID: "p", Owner: "Patient/p", Labels: c.labels}
		res, err := RunCases(pol, []Case{k})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !res[0].Pass {
			t.Errorf("%s: %s", c.name, res[0].Why)
		}
	}
}
