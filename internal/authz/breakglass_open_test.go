package authz

import (
	"encoding/json"
	"testing"

	"github.com/phivault/phivault/internal/authn"
)

// TestBreakGlassOpensOnRestrictedPatients: emergency access is meant for
// the patients the deny rules otherwise keep from a clinician outside
// their care (VIP and employee, sensitive categories, 42 CFR Part 2
// §2.51): a clinician may open a grant on them, and then read. Other
// roles still may not open one, and a patient's Consent that denies the
// clinician still denies (the defaults do not let an emergency override
// a patient's explicit refusal).
func TestBreakGlassOpensOnRestrictedPatients(t *testing.T) {
	pol, err := Defaults()
	if err != nil {
		t.Fatal(err)
	}
	consent := json.RawMessage(`{"resourceType":"Consent","status":"active","scope":{"coding":[{"code":"patient-privacy"}]},` +
		`"patient":{"reference":"Patient/p"},"provision":{"type":"deny"}}`)
	for _, c := range []struct {
		name, action string
		roles        []string
		labels       []string
		consents     []json.RawMessage
		grant        bool
		allow        bool
	}{
		{name: "VIP", action: "breakGlass", roles: []string{"physician"}, labels: []string{"VIP"}, allow: true},
		{name: "employee", action: "breakGlass", roles: []string{"nurse"}, labels: []string{"EMP"}, allow: true},
		{name: "restricted", action: "breakGlass", roles: []string{"physician"}, labels: []string{"R"}, allow: true},
		{name: "psychiatry", action: "breakGlass", roles: []string{"physician"}, labels: []string{"PSY"}, allow: true},
		{name: "Part 2", action: "breakGlass", roles: []string{"physician"}, labels: []string{"42CFRPart2"}, allow: true},
		{name: "VIP read under the grant", action: "read", roles: []string{"physician"}, labels: []string{"VIP"}, grant: true, allow: true},
		{name: "VIP read without a grant", action: "read", roles: []string{"physician"}, labels: []string{"VIP"}},
		{name: "front desk may not open", action: "breakGlass", roles: []string{"front-desk"}, labels: []string{"VIP"}},
		{name: "consent denies", action: "breakGlass", roles: []string{"physician"}, consents: []json.RawMessage{consent}},
	} {
		var k Case
		k.Name, k.Action, k.Expect = c.name, c.action, "deny"
		if c.allow {
			k.Expect = "allow"
		}
		k.Principal.Kind, k.Principal.ID, k.Principal.Roles, k.Principal.FHIRUser = authn.KindSession, "u", c.roles, "Practitioner/d"
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
