package webui_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/identity"
)

// Screenshot sizes: the desktop and phone viewports, and the tallest
// picture taken of a long page at each (the rest of the page is cut,
// to keep the repository's pictures small).
const (
	deskW, deskH   = 1200, 800
	phoneW, phoneH = 390, 844
	deskMax        = 1600
	phoneMax       = 2000
)

// shooter writes the screenshots of TestScreenshots into dir.
type shooter struct {
	t   *testing.T
	dir string
}

// shoot saves the page tb shows as name.png at the desktop width and,
// when phone is set, as name-phone.png at the phone width too. A phone
// page that scrolls sideways is logged.
func (s *shooter) shoot(tb *tab, name string, phone bool) {
	s.t.Helper()
	s.shootUpTo(tb, name, phone, deskMax, phoneMax)
}

// shootUpTo is shoot with the tallest pictures given.
func (s *shooter) shootUpTo(tb *tab, name string, phone bool, maxDesk, maxPhone int) {
	s.t.Helper()
	s.save(tb, name, maxDesk)
	if !phone {
		return
	}
	tb.do(chromedp.EmulateViewport(phoneW, phoneH))
	if sw, iw := eval[int](tb, `document.documentElement.scrollWidth`), eval[int](tb, `window.innerWidth`); sw > iw {
		s.t.Logf("%s: the page is %d px wide on a %d px phone screen", name, sw, iw)
	}
	s.save(tb, name+"-phone", maxPhone)
	tb.do(chromedp.EmulateViewport(deskW, deskH))
}

// save captures the page from its top, as tall as the page but at most
// maxH pixels, and writes it as name.png.
func (s *shooter) save(tb *tab, name string, maxH int) {
	s.t.Helper()
	// From the top, and boxes that scroll sideways (wide tables) at
	// their start, as a reader first sees them.
	h := eval[float64](tb, `(window.scrollTo(0, 0), document.querySelectorAll(".table-wrap").forEach(e => e.scrollLeft = 0),
	  Math.max(document.documentElement.scrollHeight, document.body.scrollHeight))`)
	w := eval[float64](tb, `window.innerWidth`)
	png, err := chromedp.Run(tb.ctx, call(page.CaptureScreenshot, page.CaptureScreenshotParams{
		Format:                page.CaptureScreenshotFormatPng,
		CaptureBeyondViewport: ptrTo(true),
		FromSurface:           ptrTo(true),
		Clip:                  &page.Viewport{Width: w, Height: min(h, float64(maxH)), Scale: 1},
	}))
	if err != nil {
		s.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, name+".png"), png.Data, 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("%s.png: %d bytes", name, len(png.Data))
}

func ptrTo[T any](v T) *T { return &v }

// tabAt opens a tab at the desktop viewport.
func tabAt(t *testing.T) *tab {
	t.Helper()
	tb := newTab(t)
	tb.do(chromedp.EmulateViewport(deskW, deskH))
	return tb
}

// TestScreenshots saves a PNG of the main pages of each role, at a
// desktop width and most at a phone width too (name-phone.png), into
// the directory named by PHIVAULT_SCREENSHOTS (`make screenshots` sets
// it to docs/screenshots). It loads synthetic patients with the demo's
// generator, gives the first one a fuller chart (laboratory results
// with flags and trends, a report, a medication, a problem, an
// encounter under way, a document), and drives Chromium through the
// pages of every role, each in its own tab. Without the variable it
// does nothing.
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("PHIVAULT_SCREENSHOTS")
	if dir == "" {
		t.Skip("set PHIVAULT_SCREENSHOTS to a directory to write screenshots (make screenshots)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &shooter{t: t, dir: dir}
	e := start(t, "sqlite")
	ids := e.loadPatients(t, 10)
	pid := ids[0]
	family := familyName(e.patient(t, pid))
	house := e.addUser(t, "dr.house", "Gregory House", true, identity.RolePhysician)
	e.addUser(t, "nurse.joy", "Joy Nurse", true, identity.RoleNurse)
	clerk := e.addUser(t, "desk.pam", "Pam Desk", true, identity.RoleFrontDesk)
	newcomer := e.addUser(t, "nurse.new", "Nina New", false, identity.RoleNurse)
	admin := e.addUser(t, "admin.sam", "Sam Secure", true, identity.RoleSecurityAdmin)
	officer := e.addUser(t, "privacy.pat", "Pat Privacy", true, identity.RolePrivacyOfficer)
	fullerChart(t, e, pid, house.FHIRUser)
	// A namesake under the physician's care, and one outside it.
	e.treat(t, e.storePatient(t, "Rivera", "1990-03-21", nil))
	stranger := e.Do(t, "POST", "/fhir/Patient", map[string]any{"resourceType": "Patient",
		"name": []any{map[string]any{"family": "Rivera", "given": []string{"Alma"}}}, "gender": "female", "birthDate": "1958-07-14"}, nil).Want(t, 201).ID()

	// First sign-in of a new nurse: enrolment and recovery codes.
	tn := tabAt(t)
	tn.do(navigate(e.URL+"/login"), waitCSS("#login-form"), fill("#username", newcomer.Username, "#password", newcomer.Password))
	s.shoot(tn, "01-sign-in", true)
	tn.do(submit("#login-form button[type=submit]", "#enrol-start"), submit("#enrol-start button[type=submit]", "#totp-qr"))
	s.shoot(tn, "02-enrol-totp", false)
	tn.do(fill("#code", mustCode(t, tn.text("#totp-secret"))), submit("#enrol-confirm button[type=submit]", "#recovery-codes"))
	s.shoot(tn, "03-recovery-codes", false)

	// The security admin: accounts, an invitation, the policy, the log.
	ta := tabAt(t)
	e.signIn(t, ta, admin, "#home")
	ta.do(navigate(e.URL+"/admin/users"), waitCSS("#users"))
	s.shoot(ta, "16-admin-users", true)
	ta.do(navigate(e.URL+"/admin/users/new"), waitCSS("#invite-form"),
		fill("#username", "nurse.ola", "#display_name", "Ola Onboard"), chromedp.Click(chromedp.CSS("#role-nurse")))
	s.shoot(ta, "32-admin-invite", true)
	ta.do(submit("#invite-form button[type=submit]", "#invitation-link"))
	link := ta.text("#invitation-link")
	ta.do(navigate(e.URL+"/admin/policy"), waitCSS("#policy-facts"))
	s.shoot(ta, "17-admin-policy", false)
	ta.do(navigate(e.URL+"/admin/log"), waitCSS("#log-status"))
	s.shoot(ta, "19-admin-log-status", false)

	// The invitation link: "Set your password", the code filled in.
	to := tabAt(t)
	to.do(navigate(link), waitCSS("#onboard-form"),
		chromedp.Poll[chromedp.Void](`document.getElementById("token").value !== ""`, chromedp.WithPollingTimeout(5*time.Second)))
	s.shoot(to, "20-onboarding", true)

	// The physician: the chart (a note signed, with an addendum), then
	// the start page with the chart among the recent ones.
	tc := tabAt(t)
	e.signIn(t, tc, house, "#my-patients")
	tc.do(navigate(e.URL+"/patients/"+pid), waitCSS("#vitals-chart"))
	tc.do(fill("#note-title", "Follow-up", "#note-text", "Blood pressure well controlled on current dose.\nRepeat labs in three months."),
		submitJS(`#add-note button[value="sign"]`, "#notes-list"))
	nid := strings.TrimPrefix(eval[string](tc, `document.querySelector("#notes-list li.note").id`), "note-")
	tc.do(chromedp.Click(chromedp.CSS("#note-"+nid+" details summary")), fill("#addendum-"+nid, "Potassium 5.6 on the latest panel: repeat tomorrow."),
		submitJS("#note-"+nid+" details button[type=submit]", "#notes-list"))
	tc.do(navigate(e.URL+"/patients/"+pid), waitCSS("#vitals-chart"))
	s.save(tc, "06-chart", 3000)
	tc.do(chromedp.EmulateViewport(phoneW, phoneH))
	// Responsive: nothing makes the phone page scroll sideways (wide
	// tables scroll inside their own box).
	if sw, iw := eval[int](tc, `document.documentElement.scrollWidth`), eval[int](tc, `window.innerWidth`); sw > iw {
		t.Errorf("the chart is %d px wide on a %d px phone screen", sw, iw)
	}
	s.save(tc, "07-chart-phone", 3000)
	tc.do(chromedp.EmulateViewport(deskW, deskH))
	tc.do(navigate(e.URL+"/patients"), waitCSS("#recent-patients"), waitCSS("#current-encounters"))
	s.shoot(tc, "21-worklist", true)

	// A name search: a patient in their care, and one outside it; break
	// the glass; the chart under the grant's banner.
	tg := tabAt(t)
	tg.ignore(`status of 403 \(Forbidden\) https://[^ ]+/patients/` + stranger + `$`) // the stranger's chart before the glass is broken
	e.signIn(t, tg, house, "#my-patients")
	tg.do(fill("#name", "Rivera"), submit("#patient-search button[type=submit]", "#elsewhere"))
	s.shoot(tg, "22-search-outside-care", true)
	tg.do(submit(`#elsewhere a.break-glass-link[href="/patients/`+stranger+`"]`, "#break-glass"),
		fill("#bg-reason", "ETREAT", "#bg-detail", "Brought in unconscious; allergies unknown."))
	s.shoot(tg, "11-break-glass", false)
	tg.do(submit("#break-glass button[type=submit]", "#emergency-banner"))
	s.shoot(tg, "12-emergency-access", false)
	tg.do(navigate(e.URL+"/sessions"), waitCSS("#sessions"))
	eval[bool](tg, `(document.getElementById("idle-warning").hidden = false, document.getElementById("idle-countdown").textContent = "Time left: 1:47.", true)`)
	s.shoot(tg, "08-sessions-idle-warning", false)
	tg.do(submit("#sign-out", "#page-title"), navigate(e.URL+"/trust"), waitCSS("#live-facts"))
	s.shoot(tg, "10-trust", false)

	// The front desk: registration, demographics and care team, search.
	td := tabAt(t)
	e.signIn(t, td, clerk, "#desk-link")
	td.do(submit("#desk-link", "#desk-search"), submit("#register-link", "#register"),
		fill("#family", "Okafor", "#given", "Chidi", "#birthdate", "1984-05-17"))
	s.shoot(td, "24-desk-register", false)
	td.do(submit("#register button[type=submit]", "#assign"))
	td.do(fill("#clinician", eval[string](td, `[...document.querySelectorAll("#clinician option")].find(o => o.textContent.includes("Gregory House")).value`)),
		submit("#assign button[type=submit]", "#assigned"))
	s.shoot(td, "25-desk-patient", true)
	td.do(navigate(e.URL+"/desk"), waitCSS("#desk-search"), fill("#desk-name", "Okafor"), submit("#desk-search button[type=submit]", "#desk-results"))
	s.shoot(td, "23-desk-search", true)

	// The patient whose chart the physician read: the portal.
	pat := e.addAccount(t, identity.User{Username: "patient.shots", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/" + pid}, false)
	tp := tabAt(t)
	tp.ignore(`status of 404 \(Not Found\) https://[^ ]+/\$proof`) // a proof asked before its checkpoint is signed
	e.signInPatient(t, tp, pat, "#portal-record")
	s.shoot(tp, "13-portal-record", true)
	tp.do(navigate(e.URL+"/portal/access"), waitCSS("#access-list"))
	if row := tp.openVisit("Gregory House"); row != "" {
		for range 20 {
			tp.do(chromedp.Click(chromedp.CSS("#access-" + row + " button.verify")))
			if strings.HasPrefix(tp.waitText("#verify-"+row, "erified"), "Verified") {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	s.shoot(tp, "14-portal-access-verified", true)

	tr := tabAt(t)
	e.signInPatient(t, tr, pat, "#portal-record")
	tr.do(navigate(e.URL+"/portal/summary"), waitCSS("#portal-summary"))
	s.shoot(tr, "26-portal-summary", true)
	tr.do(navigate(e.URL+"/portal/corrections"), waitCSS("#correction-form"), chromedp.SetValue(chromedp.CSS("#c-part"), "allergies"),
		fill("#c-wrong", "My penicillin allergy is missing.", "#c-should", "Allergic to penicillin (rash, 2009)."),
		submit("#correction-form button[type=submit]", "#correction-sent"))
	s.shoot(tr, "27-portal-corrections", true)
	tr.do(navigate(e.URL+"/portal/consent"), waitCSS("#consent-form"))
	s.shoot(tr, "15-portal-consent", false)

	// A parent's proxy account: the same portal, with the proxy notice.
	rid := e.Do(t, "POST", "/fhir/RelatedPerson", map[string]any{"resourceType": "RelatedPerson", "active": true,
		"patient": map[string]any{"reference": "Patient/" + pid},
		"name":    []any{map[string]any{"family": family, "given": []any{"Maria"}}},
		"extension": []any{map[string]any{"url": authz.ProxyExtension,
			"extension": []any{map[string]any{"url": "proof", "valueString": "birth certificate seen"}}}}}, nil).Want(t, 201).ID()
	carer := e.addAccount(t, identity.User{Username: "maria.proxy", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "RelatedPerson/" + rid}, false)
	tx := tabAt(t)
	e.signInPatient(t, tx, carer, "#proxy-notice")
	s.shoot(tx, "28-portal-proxy", true)

	// The privacy officer: find the patient, the audit events about
	// them, the correction queue, the break-the-glass reviews.
	tv := tabAt(t)
	e.signIn(t, tv, officer, "#home")
	tv.do(navigate(e.URL+"/privacy/lookup"), waitCSS("#lookup-patient"), fill("#lp-name", family),
		submit("#lookup-patient button[type=submit]", "#lookup-results"))
	s.shoot(tv, "29-privacy-lookup", true)
	eval[bool](tv, `([...document.querySelectorAll("#lookup-patients tr.lookup-row")].find(tr => tr.textContent.includes(`+jsString(pid)+`)).querySelector(".audit-about").id = "shot-audit", true)`)
	// Narrowed to the proxy's events, so the export buttons under the
	// events are in the picture.
	tv.do(submit("#shot-audit button", "#audit-results"), fill("#a-agent", carer.Username),
		submit("#audit-search button[type=submit]", "#audit-export"))
	s.shootUpTo(tv, "30-audit-search", true, 2400, phoneMax)
	tv.do(navigate(e.URL+"/privacy/corrections"), waitCSS("#corrections-list"))
	s.shoot(tv, "31-privacy-corrections", false)
	tv.do(navigate(e.URL+"/admin/reviews"), waitCSS("#reviews"))
	s.shoot(tv, "18-admin-break-glass-reviews", false)
}

// fullerChart gives patient pid what the chart's newer sections show:
// laboratory results (one high and rising, one low by its
// interpretation, one in range), the panel's report, a medication with
// its dose, a problem, an encounter under way naming the clinician ref
// on a named care team, and a letter.
func fullerChart(t *testing.T, e *env, pid, ref string) {
	t.Helper()
	subj := map[string]any{"reference": "Patient/" + pid}
	day := func(n int) string { return time.Now().AddDate(0, 0, -n).UTC().Format("2006-01-02T08:00:00Z") }
	e.store(t, fhir.Resource{"resourceType": "CareTeam", "status": "active", "name": "Cardiology ward", "subject": subj,
		"participant": []any{map[string]any{"member": map[string]any{"reference": ref}}}})
	e.store(t, lab(pid, day(40), "2823-3", "Potassium", 4.1, "mmol/L", 3.5, 5.1, ""))
	k := e.store(t, lab(pid, day(2), "2823-3", "Potassium", 5.6, "mmol/L", 3.5, 5.1, ""))
	hb := e.store(t, lab(pid, day(2), "718-7", "Hemoglobin", 11.4, "g/dL", 12, 16, "L"))
	e.store(t, lab(pid, day(2), "2160-0", "Creatinine", 80, "umol/L", 45, 90, ""))
	e.store(t, fhir.Resource{"resourceType": "DiagnosticReport", "status": "final", "code": loinc("24323-8", "Comprehensive metabolic panel"),
		"subject": subj, "effectiveDateTime": day(2), "conclusion": "Mild hyperkalaemia.",
		"result": []any{map[string]any{"reference": "Observation/" + k}, map[string]any{"reference": "Observation/" + hb}}})
	e.store(t, fhir.Resource{"resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": subj, "authoredOn": day(30)[:10],
		"medicationCodeableConcept": map[string]any{"text": "Metoprolol 50 mg tablet"},
		"dosageInstruction": []any{map[string]any{"text": "Take with food.",
			"route":       map[string]any{"text": "oral"},
			"timing":      map[string]any{"repeat": map[string]any{"frequency": 2, "period": 1, "periodUnit": "d"}},
			"doseAndRate": []any{map[string]any{"doseQuantity": map[string]any{"value": 1, "unit": "tablet", "system": "http://unitsofmeasure.org", "code": "{tbl}"}}}}}})
	e.store(t, fhir.Resource{"resourceType": "Condition", "subject": subj, "onsetDateTime": day(30)[:10],
		"clinicalStatus": map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}}},
		"category":       []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item"}}}},
		"code":           map[string]any{"text": "Atrial fibrillation"}})
	e.store(t, fhir.Resource{"resourceType": "Encounter", "status": "in-progress", "subject": subj,
		"class":       map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP", "display": "inpatient encounter"},
		"type":        []any{map[string]any{"text": "Cardiology admission"}},
		"reasonCode":  []any{map[string]any{"text": "Palpitations"}},
		"location":    []any{map[string]any{"location": map[string]any{"display": "Ward 3, bed 12"}}},
		"period":      map[string]any{"start": time.Now().Add(-26 * time.Hour).UTC().Format(time.RFC3339)},
		"participant": []any{map[string]any{"individual": map[string]any{"reference": ref}}}})
	e.document(t, pid, "Discharge letter", "text/plain", []byte("Admitted with palpitations; rate controlled on metoprolol. Discharged home."))
}

func mustCode(t *testing.T, secret string) string {
	t.Helper()
	u := &user{Secret: strings.TrimSpace(secret)}
	return u.code(t)
}
