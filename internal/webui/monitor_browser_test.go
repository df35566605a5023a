package webui_test

import (
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/monitor"
)

// TestPrivacyOfficerAlert walks a privacy officer through an access
// alert in Chromium (issue 16, "Done when"): a clinician reads a
// patient's record; an alert whose evidence is that very access (its
// audit log position) is raised through the monitoring service. The
// officer signs in with a second factor, opens the alerts from the
// navigation, opens the worst alert, reads its explanation and
// evidence, assigns it, adds a note and confirms it. The patient then
// signs in and sees, on that access in "Who accessed my record", that
// the privacy office is reviewing it. Every page passes the
// accessibility probe under the strict CSP.
func TestPrivacyOfficerAlert(t *testing.T) {
	e := start(t, "sqlite")
	po := e.addUser(t, "privacy.walk", "Wren Walker", true, identity.RolePrivacyOfficer)
	po2 := e.addUser(t, "privacy.mate", "Milo Mate", true, identity.RolePrivacyOfficer)
	doc := e.addUser(t, "dr.snoop", "Sasha Snoop", true, identity.RolePhysician)
	pid := e.storePatient(t, "Snoopedon", "1979-09-09", nil)
	other := e.storePatient(t, "Elsewhere", "1988-08-08", nil)
	pat := e.addAccount(t, identity.User{Username: "patient.walk", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/" + pid}, false)

	leaf := e.readLeaf(t, doc, pid)
	leaf2 := e.readLeaf(t, doc, other)
	const explanation = "read 1 patient who shares the user's surname and street; no encounter with the user's department"
	worst := e.seedAlert(t, doc, pid, leaf, monitor.CatFamily, 0.95, explanation)
	e.seedAlert(t, doc, other, leaf2, monitor.CatOffHours, 0.55, "read 1 patient outside the rostered shift")

	// With PHIVAULT_SCREENSHOTS set, the pages are pictured too (make
	// screenshots).
	var shots *shooter
	if dir := os.Getenv("PHIVAULT_SCREENSHOTS"); dir != "" {
		shots = &shooter{t: t, dir: dir}
	}
	shoot := func(tb *tab, name string) {
		if shots != nil {
			shots.shoot(tb, name, true)
		}
	}

	tb := newTab(t)
	e.signIn(t, tb, po, "#home")
	tb.do(submit("#nav-alerts", "#alert-queue"))
	tb.checkA11y()
	shoot(tb, "40-admin-alerts")
	if first := eval[string](tb, `document.querySelector("#alert-queue tbody tr.alert-item").id`); first != "alert-"+worst {
		t.Fatalf("the first alert of the queue is %s, want alert-%s (the worst)", first, worst)
	}
	if got := tb.text("#alert-" + worst); !strings.Contains(got, "Sasha Snoop (dr.snoop)") || !strings.Contains(got, "0.95") {
		t.Errorf("the worst alert's line: %q", got)
	}

	// The worst alert: explanation and evidence.
	tb.do(submit("#alert-"+worst+" a.open-alert", "#alert-explanation"))
	tb.checkA11y()
	shoot(tb, "41-admin-alert")
	if loc := tb.location(); !strings.HasSuffix(loc, "/admin/alerts/"+worst) {
		t.Errorf("the alert's address %q holds more than its id", loc)
	}
	if got := tb.text("#alert-explanation"); got != explanation {
		t.Errorf("explanation %q", got)
	}
	if got := tb.text("#evidence-accesses"); !strings.Contains(got, "Patient/"+pid) || !strings.Contains(got, "event "+itoa(leaf)) {
		t.Errorf("the accesses of the evidence: %q", got)
	}
	if got := tb.text("#evidence-missing"); !strings.Contains(got, "no encounter with the user's department") {
		t.Errorf("relationships not found: %q", got)
	}
	if got := tb.text("#evidence-signals"); !strings.Contains(got, "surname-address") || !strings.Contains(got, "+2.50") {
		t.Errorf("signals: %q", got)
	}

	// Assign to a colleague, add a note, confirm.
	tb.do(chromedp.SetValue(chromedp.CSS("#assignee"), e.accountID(t, po2)), submit("#assign-form button[type=submit]", "#done"))
	if got := tb.text("#alert-assignee"); got != "Milo Mate (privacy.mate)" {
		t.Errorf("assigned to %q", got)
	}
	const note = "Asked the ward manager: no reason to open this chart."
	tb.do(fill("#note", note), submit("#note-form button[type=submit]", "#done"))
	if got := tb.text("#notes"); !strings.Contains(got, note) || !strings.Contains(got, "Wren Walker") {
		t.Errorf("notes %q", got)
	}
	tb.do(chromedp.Click(chromedp.CSS("#status-confirmed")), submit("#disposition-form button[type=submit]", "#done"))
	tb.checkA11y()
	if got := tb.text("#alert-status"); got != "confirmed" {
		t.Errorf("status %q after confirming", got)
	}

	// The patient sees the access under review.
	pt := newTab(t)
	e.signInPatient(t, pt, pat, "#portal-record")
	pt.do(navigate(e.URL+"/portal/access"), waitCSS("#access-list"))
	pt.checkA11y()
	shoot(pt, "42-portal-access-under-review")
	got := eval[string](pt, `(function(){
	  var row = document.getElementById("access-`+itoa(leaf)+`");
	  if (!row) return "no entry";
	  var visit = row.closest("tr.access-group");
	  var mark = visit && visit.querySelector(".under-review");
	  return (mark ? mark.textContent : "no mark") + "|" + (row.querySelector(".under-review-entry") ? "entry marked" : "entry not marked");
	})()`)
	if got != "Our privacy office is reviewing this access.|entry marked" {
		t.Errorf("the patient's view of the reviewed access: %q", got)
	}
	if n := eval[int](pt, `document.querySelectorAll(".under-review").length`); n != 1 {
		t.Errorf("%d visits under review, want 1", n)
	}
}
