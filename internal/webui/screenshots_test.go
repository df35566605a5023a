package webui_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/phivault/phivault/internal/identity"
)

// TestScreenshots saves a PNG of each main page into the directory named
// by PHIVAULT_SCREENSHOTS (`make screenshots` sets it to
// docs/screenshots). It loads synthetic patients with the demo's
// generator and the demo's physician, and drives Chromium through the
// pages. Without the variable it does nothing.
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("PHIVAULT_SCREENSHOTS")
	if dir == "" {
		t.Skip("set PHIVAULT_SCREENSHOTS to a directory to write screenshots (make screenshots)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e := start(t, "sqlite")
	ids := e.loadPatients(t, 10)
	family := familyName(e.patient(t, ids[0]))
	house := e.addUser(t, "dr.house", "Gregory House", true, identity.RolePhysician)
	e.addUser(t, "nurse.joy", "Joy Nurse", true, identity.RoleNurse)
	e.addUser(t, "desk.pam", "Pam Desk", true, identity.RoleFrontDesk)
	newcomer := e.addUser(t, "nurse.new", "Nina New", false, identity.RoleNurse)

	tb := newTab(t)
	tb.ignore(`status of 40[034]`) // the validation, refusal and 404 pages shot below
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s.png: %d bytes", name, len(png))
	}
	view := func(w, h int64) {
		t.Helper()
		tb.do(chromedp.EmulateViewport(w, h))
	}
	view(1200, 800)

	// First sign-in of a new nurse: enrolment and recovery codes.
	tb.do(navigate(e.URL+"/login"), waitCSS("#login-form"), fill("#username", newcomer.Username, "#password", newcomer.Password))
	shot("01-sign-in")
	tb.do(submit("#login-form button[type=submit]", "#enrol-start"), submit("#enrol-start button[type=submit]", "#totp-qr"))
	shot("02-enrol-totp")
	tb.do(fill("#code", mustCode(t, tb.text("#totp-secret"))), submit("#enrol-confirm button[type=submit]", "#recovery-codes"))
	shot("03-recovery-codes")
	tb.do(submit("#sign-out", "#page-title"))

	// The physician: second step, search, chart.
	tb.do(navigate(e.URL+"/login"), waitCSS("#login-form"), fill("#username", house.Username, "#password", house.Password),
		submit("#login-form button[type=submit]", "#mfa-form"))
	shot("04-second-step")
	tb.do(fill("#code", house.code(t)), submit("#mfa-form button[type=submit]", "#patient-search"))
	tb.do(fill("#name", family), submit("#patient-search button[type=submit]", "#results"))
	shot("05-patient-search")
	tb.do(submit(`#results a[href="/patients/`+ids[0]+`"]`, "#vitals-chart"))
	tb.do(fill("#note-title", "Follow-up", "#note-text", "Blood pressure well controlled on current dose.\nRepeat labs in three months."),
		submit("#add-note button[type=submit]", "#notes-list"))
	tb.do(fill("#obs-kind", "heart-rate", "#obs-value", "400"), submit("#add-observation button[type=submit]", "#observation-error"))
	shot("06-chart")
	view(390, 844)
	tb.do(navigate(e.URL+"/patients/"+ids[0]), waitCSS("#vitals-chart"))
	// Responsive: nothing makes the phone page scroll sideways (wide
	// tables scroll inside their own box).
	if sw, iw := eval[int](tb, `document.documentElement.scrollWidth`), eval[int](tb, `window.innerWidth`); sw > iw {
		t.Errorf("the chart is %d px wide on a %d px phone screen", sw, iw)
	}
	shot("07-chart-phone")
	view(1200, 800)
	// A patient outside the physician's care team: refused, then break
	// the glass, and the chart under the grant's banner.
	stranger := e.Do(t, "POST", "/fhir/Patient", map[string]any{"resourceType": "Patient",
		"name": []any{map[string]any{"family": "Rivera", "given": []string{"Alma"}}}, "gender": "female", "birthDate": "1958-07-14"}, nil).Want(t, 201).ID()
	tb.do(navigate(e.URL+"/patients/"+stranger), waitCSS("#break-glass"))
	tb.do(fill("#bg-reason", "ETREAT", "#bg-detail", "Brought in unconscious; allergies unknown."))
	shot("11-break-glass")
	tb.do(submit("#break-glass button[type=submit]", "#patient-name"))
	shot("12-emergency-access")
	tb.do(navigate(e.URL+"/sessions"), waitCSS("#sessions"))
	eval[bool](tb, `(document.getElementById("idle-warning").hidden = false, document.getElementById("idle-countdown").textContent = "Time left: 1:47.", true)`)
	shot("08-sessions-idle-warning")
	tb.do(navigate(e.URL+"/no-such-page"), waitCSS("#error-message"))
	shot("09-not-found")
	tb.do(submit("#sign-out", "#page-title"), navigate(e.URL+"/trust"), waitCSS("#live-facts"))
	shot("10-trust")

	// The patient whose chart the physician read: the portal.
	pat := e.addAccount(t, identity.User{Username: "patient.shots", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/" + ids[0]}, false)
	tp := newTab(t)
	tp.ignore(`status of 404 \(Not Found\) https://[^ ]+/\$proof`) // a proof asked before its checkpoint is signed
	tp.do(chromedp.EmulateViewport(1200, 800))
	e.signInPatient(t, tp, pat, "#portal-record")
	png := func(name string) {
		t.Helper()
		b, err := chromedp.Run(tp.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	png("13-portal-record")
	tp.do(navigate(e.URL+"/portal/access"), waitCSS("#access-list"))
	row := tp.openVisit("Gregory House")
	if row != "" {
		for range 20 {
			tp.do(chromedp.Click(chromedp.CSS("#access-" + row + " button.verify")))
			if strings.HasPrefix(tp.waitText("#verify-"+row, "erified"), "Verified") {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	png("14-portal-access-verified")
	tp.do(navigate(e.URL+"/portal/consent"), waitCSS("main form"))
	png("15-portal-consent")

	// The staff console: a security admin, a privacy officer, an auditor.
	console := func(u *user, steps ...struct{ path, wait, name string }) {
		t.Helper()
		tc := newTab(t)
		tc.do(chromedp.EmulateViewport(1200, 800))
		e.signIn(t, tc, u, "#home")
		for _, st := range steps {
			tc.do(navigate(e.URL+st.path), waitCSS(st.wait))
			b, err := chromedp.Run(tc.ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, st.name+".png"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	type step = struct{ path, wait, name string }
	console(e.addUser(t, "admin.sam", "Sam Secure", true, identity.RoleSecurityAdmin),
		step{"/admin/users", "#users", "16-admin-users"}, step{"/admin/policy", "#policy-facts", "17-admin-policy"})
	console(e.addUser(t, "privacy.pat", "Pat Privacy", true, identity.RolePrivacyOfficer),
		step{"/admin/reviews", "#reviews", "18-admin-break-glass-reviews"})
	console(e.addUser(t, "audit.ann", "Ann Auditor", true, identity.RoleAuditor),
		step{"/admin/log", "#log-status", "19-admin-log-status"})
}

func mustCode(t *testing.T, secret string) string {
	t.Helper()
	u := &user{Secret: strings.TrimSpace(secret)}
	return u.code(t)
}
