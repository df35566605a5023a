package authz

import (
	"testing"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/identity"
)

// TestRelabelPrivileged: lowering security labels (the relabel action)
// is the privacy officer's, the security administrator's and service
// credentials'; clinicians on the care team, who may update the
// resource, may not; nor may a session holding the system role.
func TestRelabelPrivileged(t *testing.T) {
	pol, err := Defaults()
	if err != nil {
		t.Fatal(err)
	}
	users := memUsers{}
	for _, r := range []identity.Role{identity.RolePhysician, identity.RoleNurse, identity.RoleFrontDesk,
		identity.RoleBilling, identity.RolePrivacyOfficer, identity.RoleSecurityAdmin, identity.RoleAuditor, identity.RoleSystem} {
		users[string(r)] = identity.User{ID: string(r), Username: "u" + string(r), Roles: []identity.Role{r}, FHIRUser: "Practitioner/pr"}
	}
	a, err := New(Options{Policies: pol, Source: &memSource{res: []Found{careTeamFound}}, Users: users, Grants: memGrants{}})
	if err != nil {
		t.Fatal(err)
	}
	// Every session user here is Practitioner/pr, on p1's care team.
	org := Target{Type: "Organization", ID: "o", Owner: OrgOwner, Labels: []string{"N"}}
	obs := Target{Type: "Observation", ID: "o", Owner: "Patient/p1", Labels: []string{"PSY"}}
	far := Target{Type: "Observation", ID: "o9", Owner: "Patient/p9", Labels: []string{"PSY"}}
	for _, tc := range []struct {
		p                authn.Principal
		org, chart, away bool
	}{
		{authn.Principal{Kind: "token", ID: "t", Roles: []string{"system"}}, true, true, true},
		{authn.Principal{Kind: "session", ID: "system", Roles: []string{"system"}, MFA: true}, false, false, false},
		{authn.Principal{Kind: "session", ID: "privacy-officer", Roles: []string{"privacy-officer"}, MFA: true}, true, true, false},
		{authn.Principal{Kind: "session", ID: "security-admin", Roles: []string{"security-admin"}, MFA: true}, true, true, false},
		{authn.Principal{Kind: "session", ID: "physician", Roles: []string{"physician"}, MFA: true}, false, false, false},
		{authn.Principal{Kind: "session", ID: "nurse", Roles: []string{"nurse"}, MFA: true}, false, false, false},
		{authn.Principal{Kind: "session", ID: "front-desk", Roles: []string{"front-desk"}, MFA: true}, false, false, false},
		{authn.Principal{Kind: "session", ID: "billing", Roles: []string{"billing"}, MFA: true}, false, false, false},
		{authn.Principal{Kind: "session", ID: "auditor", Roles: []string{"auditor"}, MFA: true}, false, false, false},
	} {
		// On a sensitive record of a patient they have no relationship
		// with (far), the sensitive-category forbid still applies to the
		// privileged roles, as it does to their update.
		for _, c := range []struct {
			t    Target
			want bool
		}{{org, tc.org}, {obs, tc.chart}, {far, tc.away}} {
			d, err := a.Decide(t.Context(), tc.p, Relabel, c.t)
			if err != nil || d.Allowed != c.want {
				t.Errorf("%s %s relabel %s: %+v %v, want allowed %v", tc.p.Kind, tc.p.ID, c.t.Type, d, err, c.want)
			}
		}
		// Update stays decided on its own: the physician on the care
		// team may update the chart entry but not lower its labels.
		if tc.p.ID == "physician" {
			if d, err := a.Decide(t.Context(), tc.p, Update, obs); err != nil || !d.Allowed {
				t.Errorf("physician update: %+v %v", d, err)
			}
		}
	}
	if _, ok := ParseAction("relabel"); !ok {
		t.Fatal("relabel is not a policy action")
	}
}
