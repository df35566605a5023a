package login

import (
	"testing"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/identity"
)

// Which sign-ins and sessions need a second factor under each patient
// policy: workforce always; a patient when enrolled, or always under
// "required".
func TestPatientMFAPolicy(t *testing.T) {
	nurse := identity.User{ID: "u1", Roles: []identity.Role{identity.RoleNurse}}
	patient := identity.User{ID: "u2", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/p1"}
	enrolled := patient
	enrolled.MFAEnrolled = true
	session := func(roles []string, mfa bool) authn.Principal {
		return authn.Principal{Kind: authn.KindSession, ID: "u", Roles: roles, MFA: mfa}
	}
	for _, c := range []struct {
		name   string
		policy PatientMFA
		u      identity.User
		want   bool
	}{
		{"nurse, optional", PatientMFAOptional, nurse, true},
		{"patient, optional", PatientMFAOptional, patient, false},
		{"enrolled patient, optional", PatientMFAOptional, enrolled, true},
		{"patient, required", PatientMFARequired, patient, true},
	} {
		s := &Service{patientMFA: c.policy}
		if got := s.secondFactor(c.u); got != c.want {
			t.Errorf("%s: sign-in needs a second factor = %v, want %v", c.name, got, c.want)
		}
	}
	for _, c := range []struct {
		name   string
		policy PatientMFA
		p      authn.Principal
		want   bool
	}{
		{"nurse session without mfa", PatientMFAOptional, session([]string{"nurse"}, false), true},
		{"patient password session, optional", PatientMFAOptional, session([]string{"patient"}, false), false},
		{"patient password session, required", PatientMFARequired, session([]string{"patient"}, false), true},
		{"patient mfa session, required", PatientMFARequired, session([]string{"patient"}, true), false},
		{"api token, required", PatientMFARequired, authn.Principal{Kind: authn.KindToken, Roles: []string{"system"}}, false},
	} {
		s := &Service{patientMFA: c.policy}
		if got := s.NeedsSecondFactor(c.p); got != c.want {
			t.Errorf("%s: NeedsSecondFactor = %v, want %v", c.name, got, c.want)
		}
	}
	if PatientMFA("sometimes").Valid() || !PatientMFA("").Valid() {
		t.Errorf("PatientMFA.Valid accepts an unknown policy or refuses the default")
	}
}
