package webui_test

import (
	_ "embed"
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/phivault/phivault/internal/identity"
)

// The main pages of each role, checked in Chromium at a desktop width
// and on a 390 x 844 phone: axe-core finds no serious or critical
// accessibility violation, each checkbox and radio button sits on the
// first line of its own label and left of it, no table (nor the page)
// is wider than the screen, every action button is on screen, and the
// vital-signs chart's labels are readable on the phone.

// axeSource is axe-core (testdata/axe/README.md: version, licence). It
// is injected by DevTools into the page under test only.
//
//go:embed testdata/axe/axe.min.js
var axeSource string

// axeRun runs axe over the page and returns its serious and critical
// violations, one line each with the offending elements.
const axeRun = `(async function () {
  const r = await axe.run(document, {resultTypes: ["violations"]});
  return r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => v.impact + " " + v.id + ": " + v.help + " at " + v.nodes.map(n => n.target.join(" ")).join(", "));
})()`

// checkAxe fails the test with axe's serious and critical findings.
func (tb *tab) checkAxe() {
	tb.t.Helper()
	if !eval[bool](tb, `typeof axe !== "undefined"`) {
		if _, err := chromedp.Run(tb.ctx, chromedp.Evaluate[chromedp.Void](axeSource)); err != nil {
			tb.t.Fatalf("injecting axe-core: %v", err)
		}
	}
	for _, v := range eval[[]string](tb, axeRun) {
		tb.t.Errorf("axe, at %s: %s", tb.location(), v)
	}
}

// choiceProbe lists the checkboxes and radio buttons that are not on the
// first line of their own label's text, left of it.
const choiceProbe = `(function () {
  var bad = [];
  document.querySelectorAll("main input[type=checkbox], main input[type=radio]").forEach(function (box) {
    if (box.offsetParent === null) { return; } // not shown
    var label = box.labels && box.labels[0];
    if (!label) { bad.push("no label for " + box.id); return; }
    var range = document.createRange();
    range.selectNodeContents(label);
    var lines = range.getClientRects();
    if (lines.length === 0) { bad.push("empty label for " + box.id); return; }
    var line = lines[0], b = box.getBoundingClientRect(), mid = (b.top + b.bottom) / 2;
    if (mid < line.top || mid > line.bottom) {
      bad.push(box.id + " (y " + Math.round(b.top) + "–" + Math.round(b.bottom) + ") is not on the line of its label (y " + Math.round(line.top) + "–" + Math.round(line.bottom) + ")");
    }
    if (b.right > line.left + 0.5 || line.left - b.right > 48) {
      bad.push(box.id + " (x " + Math.round(b.left) + "–" + Math.round(b.right) + ") is not just left of its label (x " + Math.round(line.left) + ")");
    }
  });
  return bad;
})()`

// phoneProbe lists what does not fit a phone screen: the page or a table
// wider than the viewport, an action button off screen.
const phoneProbe = `(function () {
  var bad = [], w = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth > w) { bad.push("the page is " + document.documentElement.scrollWidth + " px wide on a " + w + " px screen"); }
  document.querySelectorAll("main table").forEach(function (t) {
    if (t.offsetParent === null) { return; }
    var r = t.getBoundingClientRect();
    if (r.left < 0 || r.right > w + 0.5) { bad.push("table " + (t.id || "") + " spans x " + Math.round(r.left) + "–" + Math.round(r.right)); }
    t.querySelectorAll("td").forEach(function (c) {
      var cr = c.getBoundingClientRect();
      if (c.offsetParent !== null && (cr.right > w + 0.5 || c.scrollWidth > c.clientWidth + 1)) { bad.push("a cell of table " + (t.id || "") + " is clipped: " + c.textContent.trim().slice(0, 40)); }
    });
  });
  document.querySelectorAll("main button, main a.button").forEach(function (b) {
    if (b.closest("[hidden]") || getComputedStyle(b).display === "none") { return; }
    var r = b.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.left < 0 || r.right > w + 0.5) { bad.push("button " + JSON.stringify(b.textContent.trim()) + " at x " + Math.round(r.left) + "–" + Math.round(r.right)); }
  });
  return bad;
})()`

// checkPage runs the checks on the current page at a desktop width and
// on a phone, and leaves the tab at the desktop width.
func (tb *tab) checkPage() {
	tb.t.Helper()
	tb.checkAxe()
	tb.checkA11y()
	for _, b := range eval[[]string](tb, choiceProbe) {
		tb.t.Errorf("at %s (desktop): %s", tb.location(), b)
	}
	tb.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	for _, b := range eval[[]string](tb, phoneProbe) {
		tb.t.Errorf("at %s (390 px): %s", tb.location(), b)
	}
	for _, b := range eval[[]string](tb, choiceProbe) {
		tb.t.Errorf("at %s (390 px): %s", tb.location(), b)
	}
	tb.checkAxe()
	// A tablet: the cards are gone, a wide table may scroll in its own
	// (focusable) box, the page itself does not.
	tb.do(chromedp.EmulateViewport(800, 1000))
	tb.checkAxe()
	if sw, w := eval[int](tb, `document.documentElement.scrollWidth`), eval[int](tb, `document.documentElement.clientWidth`); sw > w {
		tb.t.Errorf("at %s (800 px): the page is %d px wide", tb.location(), sw)
	}
	tb.do(chromedp.EmulateViewport(1280, 900))
}

// visit opens path and waits for its h1, then checks the page.
func (tb *tab) visit(base, path string) {
	tb.t.Helper()
	tb.do(navigate(base+path), waitCSS("main h1"))
	tb.checkPage()
}

func TestPagesOfEveryRole(t *testing.T) {
	e := start(t, "sqlite")
	ids := e.loadPatients(t, 2)
	family := familyName(e.patient(t, ids[0]))
	doc := e.addUser(t, "dr.layout", "Lee Layout", true, identity.RolePhysician)
	admin := e.addUser(t, "sec.layout", "Sol Layout", true, identity.RoleSecurityAdmin)
	auditor := e.addUser(t, "aud.layout", "Ada Layout", true, identity.RoleAuditor)
	privacy := e.addUser(t, "priv.layout", "Pia Layout", true, identity.RolePrivacyOfficer)
	pat := e.addAccount(t, identity.User{Username: "patient.layout", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/" + ids[0]}, false)

	t.Run("signed out", func(t *testing.T) {
		tb := newTab(t)
		for _, p := range []string{"/login", "/enrol", "/trust"} {
			tb.visit(e.URL, p)
		}
	})
	t.Run("physician", func(t *testing.T) {
		tb := newTab(t)
		e.signIn(t, tb, doc, "#patient-search")
		tb.checkPage()
		tb.do(fill("#name", family), submit("#patient-search button[type=submit]", "#results"))
		tb.checkPage()
		tb.do(navigate(e.URL+"/patients/"+ids[0]), waitCSS("#vitals-chart"))
		tb.checkPage()
		// The chart on the phone: the narrow drawing, with labels of at
		// least 12 px.
		tb.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		shown := eval[string](tb, `[...document.querySelectorAll("#vitals-chart svg")].filter(s => getComputedStyle(s).display !== "none").map(s => s.getAttribute("class")).join()`)
		if shown != "vitals narrow" {
			t.Errorf("on a phone the chart shows %q, want the narrow drawing", shown)
		}
		var sizes []float64
		raw := eval[string](tb, `JSON.stringify([...document.querySelectorAll("#vitals-chart svg.narrow text")].map(x => x.getBoundingClientRect().height))`)
		if err := json.Unmarshal([]byte(raw), &sizes); err != nil || len(sizes) == 0 {
			t.Fatalf("chart labels: %s %v", raw, err)
		}
		for _, h := range sizes {
			if h < 12 {
				t.Errorf("a chart label is %.1f px tall on a 390 px phone, want at least 12", h)
			}
		}
		tb.do(chromedp.EmulateViewport(1280, 900))
		for _, p := range []string{"/sessions", "/security"} {
			tb.visit(e.URL, p)
		}
	})
	t.Run("patient", func(t *testing.T) {
		tb := newTab(t)
		e.signInPatient(t, tb, pat, "#portal-record")
		tb.checkPage()
		for _, p := range []string{"/portal/access", "/portal/consent", "/portal/download", "/security"} {
			tb.visit(e.URL, p)
		}
	})
	t.Run("security admin", func(t *testing.T) {
		tb := newTab(t)
		e.signIn(t, tb, admin, "#home")
		// A role request waits, so the approvals table has its buttons.
		tb.do(navigate(e.URL+"/admin/users/new"), waitCSS("#invite-form"), fill("#username", "nurse.pending"),
			chromedp.Click(chromedp.CSS("#role-nurse")), submit("#invite-form button[type=submit]", "#invitation-link"))
		tb.checkPage()
		for _, p := range []string{"/admin", "/admin/users", "/admin/users/new", "/admin/clients", "/admin/requests", "/admin/policy", "/admin/keys", "/admin/log", "/admin/backups"} {
			tb.visit(e.URL, p)
		}
		tb.do(navigate(e.URL+"/admin/users"), waitCSS("#users"), submit(`#users a[href^="/admin/users/usr_"]`, "#user-facts"))
		tb.checkPage()
	})
	t.Run("auditor", func(t *testing.T) {
		tb := newTab(t)
		e.signIn(t, tb, auditor, "#home")
		tb.visit(e.URL, "/admin/audit")
		tb.do(submit("#audit-search button[type=submit]", "#audit-results"))
		tb.checkPage()
	})
	t.Run("privacy officer", func(t *testing.T) {
		tb := newTab(t)
		e.signIn(t, tb, privacy, "#home")
		for _, p := range []string{"/admin/reviews", "/privacy/reports", "/admin/audit"} {
			tb.visit(e.URL, p)
		}
	})
	if !strings.HasPrefix(e.URL, "https://") {
		t.Fatalf("base URL %s", e.URL)
	}
}
