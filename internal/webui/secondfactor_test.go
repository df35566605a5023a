package webui_test

import (
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/identity"
)

// enrolTOTP goes through the enrolment pages from #enrol-start to the
// recovery codes and returns the TOTP secret shown.
func enrolTOTP(t *testing.T, tb *tab) string {
	t.Helper()
	tb.do(submit("#enrol-start button[type=submit]", "#totp-secret"))
	secret := tb.text("#totp-secret")
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tb.do(fill("#code", code), submit("#enrol-confirm button[type=submit]", "#recovery-codes"))
	return secret
}

// TestPatientSecondFactor: under the default policy a patient signs in
// with a password, adds an authenticator app from the Security page
// (which ends the password-only sessions), and is asked for a code at
// the next sign-in.
func TestPatientSecondFactor(t *testing.T) {
	e := start(t, "sqlite")
	pid := e.loadPatients(t, 1)[0]
	pat := e.addAccount(t, identity.User{Username: "patient.sec", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/" + pid}, false)

	other := newTab(t)
	e.signInPatient(t, other, pat, "#portal-record")
	tb := newTab(t)
	e.signInPatient(t, tb, pat, "#portal-record")
	tb.do(navigate(e.URL+"/security"), waitCSS("#add-second-factor"))
	tb.checkA11y()
	tb.do(submit("#add-second-factor button[type=submit]", "#enrol-start"))
	secret := enrolTOTP(t, tb)
	tb.do(submit("#recovery-continue", "#portal-record"))
	tb.do(navigate(e.URL+"/security"), waitCSS("#page-title"))
	if n := eval[int](tb, `document.querySelectorAll("#add-second-factor").length`); n != 0 {
		t.Errorf("the Security page still offers to add a second step")
	}
	// The password-only session elsewhere has ended.
	other.do(navigate(e.URL+"/portal"), waitCSS("#login-form"))

	// The next sign-in asks for the code.
	tb.do(submit("#sign-out", "#page-title"))
	tb.do(navigate(e.URL+"/login"), waitCSS("#login-form"), fill("#username", pat.Username, "#password", pat.Password),
		submit("#login-form button[type=submit]", "#mfa-form"))
	code, err := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	tb.do(fill("#code", code), submit("#mfa-form button[type=submit]", "#portal-record"))
}

// TestPatientSecondFactorRequired: with auth.patient_mfa "required" a
// patient without a second factor sets one up at sign-in, before the
// portal, and lands on the portal page asked for.
func TestPatientSecondFactorRequired(t *testing.T) {
	e := start(t, "sqlite", func(o *login.Options) { o.PatientMFA = login.PatientMFARequired })
	pid := e.loadPatients(t, 1)[0]
	pat := e.addAccount(t, identity.User{Username: "patient.req", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/" + pid}, false)
	tb := newTab(t)
	tb.do(navigate(e.URL+"/portal/access"), waitCSS("#login-form"))
	tb.do(fill("#username", pat.Username, "#password", pat.Password), submit("#login-form button[type=submit]", "#enrol-start"))
	enrolTOTP(t, tb)
	tb.do(submit("#recovery-continue", "#portal-access"))
	if got := tb.location(); got != e.URL+"/portal/access" {
		t.Errorf("after enrolment at %s", got)
	}
}
