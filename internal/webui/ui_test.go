package webui_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/webui"
)

// TestClinicianFlow is the clinician's day on both drivers: sign in with
// a password and a TOTP code, find a patient without the search terms
// reaching a URL, open the chart with its vital-signs chart, record a
// vital sign and a note (and see a plain validation error), sign out.
func TestClinicianFlow(t *testing.T) {
	for _, driver := range apitest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := start(t, driver)
			ids := e.loadPatients(t, 3)
			family := familyName(e.patient(t, ids[0]))
			doc := e.addUser(t, "dr.test", "Greg Test", true, identity.RolePhysician)
			tb := newTab(t)
			tb.ignore(`status of 400 \(Bad Request\) https://[^ ]+/patients/[^/ ]+/observations$`) // the validation error this test asks for
			e.signIn(t, tb, doc, "#patient-search")
			if got := tb.text("#who-name"); got != "Greg Test" {
				t.Errorf("header shows %q, want the display name", got)
			}
			if got := tb.text("#who-role"); !strings.Contains(got, "physician") {
				t.Errorf("header role %q, want physician", got)
			}

			tb.checkA11y()
			tb.do(fill("#name", family), submit("#patient-search button[type=submit]", "#results"))
			tb.checkA11y()
			loc := tb.location()
			if !regexp.MustCompile(`/patients/search/[0-9a-f]{32}$`).MatchString(loc) || strings.Contains(strings.ToLower(loc), strings.ToLower(family)) {
				t.Errorf("results URL %q: want an opaque id and no search term", loc)
			}
			tb.do(submit(`#results a[href="/patients/`+ids[0]+`"]`, "#vitals-chart"))
			if n := eval[int](tb, `document.querySelectorAll("#vitals-chart polyline").length`); n < 3 {
				t.Errorf("vitals chart has %d lines, want heart rate, systolic, diastolic and weight", n)
			}
			if n := eval[int](tb, `document.querySelectorAll("#vitals-chart circle").length`); n < 6 {
				t.Errorf("vitals chart has %d points", n)
			}
			tb.checkA11y()
			for _, sec := range []string{"#problems", "#medications", "#allergies", "#encounters", "#notes", "#observations"} {
				tb.do(chromedp.WaitReady(chromedp.CSS(sec)))
			}
			if got := tb.text("#patient-name"); !strings.Contains(got, family) {
				t.Errorf("chart of %q, want the patient searched", got)
			}

			// A plain validation error, then a vital sign saved.
			tb.do(fill("#obs-kind", "heart-rate", "#obs-value", "abc"), submit("#add-observation button[type=submit]", "#observation-error"))
			if got := tb.text("#observation-error"); !strings.Contains(got, "must be a number between 20 and 300") {
				t.Errorf("validation message %q", got)
			}
			tb.do(fill("#obs-kind", "heart-rate", "#obs-value", "177", "#obs-value2", ""), submit("#add-observation button[type=submit]", "#vitals-chart"))
			if got := tb.text("#vitals table"); !strings.Contains(got, "177/min") {
				t.Errorf("the new heart rate is not in the vitals table")
			}
			tb.do(fill("#obs-kind", "blood-pressure", "#obs-value", "131", "#obs-value2", "85"), submit("#add-observation button[type=submit]", "#vitals-chart"))
			if got := tb.text("#vitals table"); !strings.Contains(got, "131/85 mmHg") {
				t.Errorf("the new blood pressure is not in the vitals table")
			}

			tb.do(fill("#note-title", "Follow-up", "#note-text", "Feels better.\nReview in two weeks."), submit("#add-note button[type=submit]", "#notes-list"))
			if got := tb.text("#notes-list"); !strings.Contains(got, "Review in two weeks.") || !strings.Contains(got, "Greg Test") {
				t.Errorf("notes list %q, want the new note and its author", got)
			}

			tb.do(submit("#sign-out", "#page-title"))
			if got := tb.text("#page-title"); got != "You are signed out" {
				t.Errorf("after sign-out: %q", got)
			}
			tb.do(navigate(e.URL+"/patients"), waitCSS("#login-form"))

			// Every PHI access of the pages is in the audit log, as the UI's
			// (client "webui", with the session), and no search value is.
			evs, err := e.App.Transparency().Events(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			pt := "Patient/" + ids[0]
			counts := map[audit.Action]int{}
			for _, ev := range evs {
				if ev.Agent.Client != "webui" {
					continue
				}
				if ev.Action == audit.ActionRequest {
					// A page or form that touched no record (the search
					// form, the sign-out): audited as a request, no purpose.
					if ev.Agent.Session == "" || ev.RequestID == "" || strings.Contains(ev.Query, family) {
						t.Errorf("UI request event without session or request id, or with a value: %+v", ev)
					}
					continue
				}
				if ev.Agent.Session == "" || ev.Purpose != "TREAT" || ev.RequestID == "" {
					t.Errorf("UI audit event without session, purpose or request id: %+v", ev)
				}
				if strings.Contains(ev.Query, family) {
					t.Errorf("a search value reached the audit log: %q", ev.Query)
				}
				if slices.Contains(ev.Patients, pt) || ev.Action == audit.ActionSearch {
					counts[ev.Action]++
				}
			}
			if counts[audit.ActionRead] < 4 || counts[audit.ActionSearch] < 7*4 || counts[audit.ActionCreate] != 3 {
				t.Errorf("audit events of the UI: %v; want the chart's reads and searches and 3 creates", counts)
			}

			// No PHI reached the server log: not the search term, not the note.
			logs := e.Logs()
			for _, s := range []string{family, "Review in two weeks"} {
				if strings.Contains(logs, s) {
					t.Errorf("server log contains %q", s)
				}
			}
		})
	}
}

// TestEnrolment is the first sign-in: the QR code drawn by the server,
// a first code, the recovery codes shown once, then the clinician's
// start page.
func TestEnrolment(t *testing.T) {
	e := start(t, "sqlite")
	nurse := e.addUser(t, "nurse.new", "Nina New", false, identity.RoleNurse)
	tb := newTab(t)
	tb.ignore(`status of 401 \(Unauthorized\) https://[^ ]+/login/mfa$`) // the reused recovery code
	tb.do(
		navigate(e.URL+"/login"), waitCSS("#login-form"),
		fill("#username", nurse.Username, "#password", nurse.Password),
		submit("#login-form button[type=submit]", "#enrol-start"),
		submit("#enrol-start button[type=submit]", "#totp-qr"),
	)
	tb.checkA11y()
	src := eval[string](tb, `document.getElementById("totp-qr").getAttribute("src")`)
	if !strings.HasPrefix(src, "data:image/png;base64,") {
		t.Fatalf("QR code src %.40q, want a PNG data: URI", src)
	}
	if w := eval[int](tb, `document.getElementById("totp-qr").naturalWidth`); w < 100 {
		t.Errorf("QR code is %d px wide: not decoded", w)
	}
	secret := strings.TrimSpace(tb.text("#totp-secret"))
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tb.do(fill("#code", code), submit("#enrol-confirm button[type=submit]", "#recovery-codes"))
	tb.checkA11y()
	if n := eval[int](tb, `document.querySelectorAll("#recovery-codes li").length`); n < 8 {
		t.Errorf("%d recovery codes shown", n)
	}
	recoveryCode := tb.text("#recovery-codes li code")
	tb.do(submit(`a.button[href="/"]`, "#patient-search"))
	if got := tb.text("#who-role"); !strings.Contains(got, "nurse") {
		t.Errorf("role %q", got)
	}

	// A recovery code signs in once instead of an app code.
	recover := func(want string) {
		t.Helper()
		tb.do(
			navigate(e.URL+"/login"), waitCSS("#login-form"),
			fill("#username", nurse.Username, "#password", nurse.Password),
			submit("#login-form button[type=submit]", "#mfa-form"),
			chromedp.Click(chromedp.CSS("#method-recovery")),
			fill("#code", recoveryCode),
			submit("#mfa-form button[type=submit]", want),
		)
	}
	tb.do(submit("#sign-out", "#page-title"))
	recover("#patient-search")
	tb.do(submit("#sign-out", "#page-title"))
	recover("#form-error")
	if got := tb.text("#form-error"); !strings.Contains(got, "not accepted") {
		t.Errorf("reused recovery code: %q", got)
	}
}

// TestCSRFRefused: a POST without the form's token, or with a wrong one,
// is refused with a plain page and changes nothing.
func TestCSRFRefused(t *testing.T) {
	e := start(t, "sqlite")
	doc := e.addUser(t, "dr.csrf", "Casey Csrf", true, identity.RolePhysician)
	tb := newTab(t)
	tb.ignore(`status of (403 \(Forbidden\)|404 \(Not Found\))`) // the refusals this test asks for
	e.signIn(t, tb, doc, "#patient-search")
	post := func(path, body string) (int, string) {
		t.Helper()
		js := `fetch(` + jsString(path) + `, {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: ` + jsString(body) + `})
		  .then(async r => [String(r.status), await r.text()])`
		v := eval[[]string](tb, js)
		return atoi(v[0]), v[1]
	}
	for _, c := range []struct{ name, path, body string }{
		{"search without token", "/patients/search", "name=x"},
		{"search with a wrong token", "/patients/search", "name=x&csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"sign-out without token", "/logout", ""},
		{"keepalive without token", "/session/keepalive", ""},
	} {
		status, body := post(c.path, c.body)
		if status != http.StatusForbidden || !strings.Contains(body, "Form refused") || !strings.Contains(body, "Request id") {
			t.Errorf("%s: got %d, want 403 with the plain page", c.name, status)
		}
	}
	// The session survived the refused sign-out.
	tb.do(navigate(e.URL+"/sessions"), waitCSS("#sessions"))
	// With the page's token the same POST works.
	tok := eval[string](tb, `document.querySelector('input[name="csrf"]').value`)
	if status, _ := post("/session/keepalive", "csrf="+url.QueryEscape(tok)); status != http.StatusNoContent {
		t.Errorf("keepalive with the token: %d, want 204", status)
	}

	// Break-the-glass on a patient that does not exist: a plain 404 page.
	if status, body := post("/patients/some-id/break-glass", "reason=ETREAT&detail=x&csrf="+url.QueryEscape(tok)); status != http.StatusNotFound ||
		!strings.Contains(body, "no such patient") {
		t.Errorf("break-the-glass on no patient: %d", status)
	}

	// A page on another origin that makes the browser POST a form here
	// (sign-out, with no token it could know) changes nothing: the
	// SameSite=Strict cookie is not sent, and the token would be missing.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><title>evil</title><form id="f" method="post" action="`+e.URL+`/logout"><input name="csrf" value="guess"></form><script>document.getElementById("f").submit()</script>`)
	}))
	defer evil.Close()
	tb.do(navigate(evil.URL), waitCSS("#login-form"))
	tb.do(navigate(e.URL+"/sessions"), waitCSS("#sessions"))

	// Before sign-in: the login form needs its pre-session token too.
	c := http.Client{Transport: &http.Transport{TLSClientConfig: tlsInsecure()}, CheckRedirect: noRedirect}
	resp, err := c.PostForm(e.URL+"/login", url.Values{"username": {doc.Username}, "password": {doc.Password}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "Form refused") {
		t.Errorf("login without token: %d", resp.StatusCode)
	}
	if len(resp.Cookies()) != 0 {
		t.Errorf("login without token set cookies")
	}
}

// TestFramingRefused: every UI answer forbids framing, and a page on
// another origin cannot show the UI in a frame.
func TestFramingRefused(t *testing.T) {
	e := start(t, "sqlite")
	c := http.Client{Transport: &http.Transport{TLSClientConfig: tlsInsecure()}, CheckRedirect: noRedirect}
	for _, p := range []string{"/login", "/trust", "/patients", "/no-such-page", "/static/app.css"} {
		resp, err := c.Get(e.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("%s: X-Frame-Options %q", p, got)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != webui.CSP {
			t.Errorf("%s: CSP %q", p, got)
		}
		if !strings.Contains(webui.CSP, "frame-ancestors 'none'") {
			t.Fatal("the UI CSP lost frame-ancestors")
		}
	}
	// The API keeps its own deny-all policy.
	resp, err := c.Get(e.URL + "/fhir/metadata")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Content-Security-Policy"); got != "default-src 'none'; frame-ancestors 'none'" {
		t.Errorf("/fhir CSP %q", got)
	}

	target := e.URL + "/login"
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><title>other origin</title><iframe id="f" src="`+target+`" width="600" height="400"></iframe>`)
	}))
	defer other.Close()
	tb := newTab(t)
	tb.allowErrs = true // Chromium reports the refused frame as an error: that is the point
	tb.do(navigate(other.URL), waitCSS("#f"), chromedp.Sleep(1500*time.Millisecond))
	// With site isolation the cross-origin frame is its own target:
	// attach to it and look at the document it holds.
	targets, err := chromedp.Targets(tb.ctx)
	if err != nil {
		t.Fatal(err)
	}
	framed := 0
	for _, x := range targets {
		if x.Type != "iframe" {
			continue
		}
		framed++
		fctx, cancel := chromedp.NewContext(tb.ctx, chromedp.WithTargetID(x.TargetID))
		doc, err := chromedp.Run(fctx, chromedp.Evaluate[[]string](`[location.href, document.title, String(document.querySelectorAll("form").length)]`))
		cancel()
		if err != nil {
			t.Fatalf("reading the framed document: %v", err)
		}
		t.Logf("framed document: %q", doc)
		if doc[0] == target || strings.Contains(doc[1], "phivault") || doc[2] != "0" {
			t.Errorf("the sign-in page rendered inside another origin's frame: %q", doc)
		}
	}
	if framed != 1 {
		t.Errorf("%d frame targets, want 1", framed)
	}
	tb.mu.Lock()
	reported := strings.Join(tb.errors, "\n")
	tb.mu.Unlock()
	if !strings.Contains(reported, "frame-ancestors") {
		t.Errorf("no frame-ancestors refusal reported; browser said:\n%s", reported)
	}
}

// TestMarkupInert: script and markup in patient names and notes are
// shown as text: no dialog opens, nothing is parsed as markup.
func TestMarkupInert(t *testing.T) {
	e := start(t, "sqlite")
	const family = `<script>alert("family")</script>`
	const given = `"><img src=x onerror=alert('given')>`
	r := e.Do(t, "POST", "/fhir/Patient", map[string]any{
		"resourceType": "Patient",
		"identifier":   []any{map[string]any{"system": "urn:test", "value": "XSS-0001"}},
		"name":         []any{map[string]any{"family": family, "given": []string{given}}},
		"gender":       "unknown",
		"birthDate":    "1970-01-01",
	}, nil).Want(t, 201)
	id := r.ID()
	e.treat(t, id)
	doc := e.addUser(t, "dr.xss", "Xavier Xss", true, identity.RolePhysician)
	tb := newTab(t)
	tb.dismissDialogs()
	e.signIn(t, tb, doc, "#patient-search")
	tb.do(fill("#identifier", "XSS-0001"), submit("#patient-search button[type=submit]", "#results"))
	want := family + ", " + given
	if got := tb.text("#results .patient-link"); got != want {
		t.Errorf("result shows %q, want the name as text %q", got, want)
	}
	tb.do(submit(`#results a[href="/patients/`+id+`"]`, "#patient-name"))
	if got := tb.text("#patient-name"); got != want {
		t.Errorf("chart shows %q, want %q", got, want)
	}
	const note = `<img src=x onerror=alert('note')><script>alert('note2')</script><a href="javascript:alert(3)">x</a>`
	tb.do(fill("#note-title", `<b onmouseover=alert(4)>t</b>`, "#note-text", note), submit("#add-note button[type=submit]", "#notes-list"))
	if got := tb.text("#notes-list .note-text"); got != note {
		t.Errorf("note shows %q, want the text as typed", got)
	}
	if n := eval[int](tb, `document.querySelectorAll("main script, main img:not(#totp-qr), #notes-list a, #notes-list b").length`); n != 0 {
		t.Errorf("%d elements were created from user text", n)
	}
	html := eval[string](tb, `document.getElementById("notes-list").innerHTML`)
	if !strings.Contains(html, "&lt;script&gt;") {
		t.Errorf("the note is not escaped in the markup")
	}
}

// TestSessionsAndIdle: "My sessions" lists and revokes sessions; the
// idle warning's "stay signed in" keeps the session.
func TestSessionsAndIdle(t *testing.T) {
	e := start(t, "sqlite")
	doc := e.addUser(t, "dr.sess", "Sam Sess", true, identity.RolePhysician)
	tb := newTab(t)
	e.signIn(t, tb, doc, "#patient-search")
	// A second session elsewhere.
	res, err := e.App.Login.Login(t.Context(), doc.Username, doc.Password, setupAddr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.App.Login.Verify(t.Context(), res.Challenge, "totp", doc.code(t), setupAddr); err != nil {
		t.Fatal(err)
	}
	tb.do(navigate(e.URL+"/sessions"), waitCSS("#sessions"))
	tb.checkA11y()
	if n := eval[int](tb, `document.querySelectorAll("#sessions tbody tr").length`); n != 2 {
		t.Fatalf("%d sessions listed, want 2", n)
	}
	if !strings.Contains(tb.text("#sessions"), setupAddr.String()) {
		t.Errorf("the other session's address is not shown")
	}
	tb.do(submit(`#sessions tbody tr:not(.current) button`, "#sessions"))
	if n := eval[int](tb, `document.querySelectorAll("#sessions tbody tr").length`); n != 1 {
		t.Errorf("%d sessions after revoking one, want 1", n)
	}

	if got := eval[string](tb, `document.body.dataset.idleTimeout`); got != "900" {
		t.Errorf("idle timeout attribute %q, want 900 (15 minutes)", got)
	}
	// The warning, on a clock 200 times fast (DevTools wraps the
	// page's timers before idle.js runs): it appears two minutes before
	// the end, "Stay signed in" hides it and keeps the session, and when
	// time runs out the page is left.
	fast := newTab(t)
	if _, err := chromedp.Run(fast.ctx, call(page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `(function () {
	  var st = window.setTimeout, si = window.setInterval;
	  window.setTimeout = function (f, d) { return st(f, (d || 0) / 200); };
	  window.setInterval = function (f, d) { return si(f, (d || 0) / 200); };
	})();`})); err != nil {
		t.Fatal(err)
	}
	nurse := e.addUser(t, "nurse.idle", "Ida Idle", true, identity.RoleNurse)
	e.signIn(t, fast, nurse, "#patient-search")
	fast.do(navigate(e.URL+"/sessions"), waitCSS("#sessions"), waitCSS("#idle-warning"))
	if got := fast.text("#idle-countdown"); !strings.HasPrefix(got, "Time left: ") {
		t.Errorf("countdown %q", got)
	}
	fast.do(chromedp.Click(chromedp.CSS("#idle-stay")), chromedp.WaitNotVisible(chromedp.CSS("#idle-warning")))
	if fast.location() != e.URL+"/sessions" {
		t.Errorf("stay signed in left the page")
	}
	// Time runs out: the page goes to /login, which returns a live
	// session to the start page.
	fast.do(waitCSS("#idle-warning"), waitCSS("#patient-search"))
}

// TestPagesForRoles: the trust page without sign-in, a non-clinical
// role kept away from patients, and error pages with the request id.
func TestPagesForRoles(t *testing.T) {
	e := start(t, "sqlite")
	ids := e.loadPatients(t, 2)
	desk := e.addUser(t, "desk.test", "Dee Desk", true, identity.RoleFrontDesk)
	e.addUser(t, "dr.pending", "Pen Ding", false, identity.RolePhysician)
	pia := e.addAccount(t, identity.User{Username: "patient.test", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/" + ids[1]}, false)

	tb := newTab(t)
	tb.ignore(`status of 403 \(Forbidden\) https://[^ ]+/patients$`) // the refusal this test asks for
	tb.do(navigate(e.URL+"/trust"), waitCSS("#live-facts"))
	tb.checkA11y()
	tb.do(navigate(e.URL+"/login"), waitCSS("#login-form"))
	tb.checkA11y()
	tb.do(navigate(e.URL+"/trust"), waitCSS("#live-facts"))
	if got := tb.text("#fact-patient-keys"); got != "2" {
		t.Errorf("patient keys fact %q, want 2", got)
	}
	if got := tb.text("#facts-mfa"); !strings.Contains(got, "1 of 2") {
		t.Errorf("MFA fact %q, want 1 of 2", got)
	}
	tb.do(waitCSS("#facts-audit"))
	if got := tb.text("#facts-audit"); !strings.Contains(got, "Entries in the access log") || !strings.Contains(got, "Last full verification") {
		t.Errorf("audit-log facts %q", got)
	}

	e.signIn(t, tb, desk, "#home")
	tb.do(navigate(e.URL+"/patients"), waitCSS("#error-message"))
	if got := tb.text("#page-title"); got != "Not available to your role" {
		t.Errorf("front desk at /patients: %q", got)
	}
	if eval[int](tb, `document.querySelectorAll('a[href="/patients"]').length`) != 0 {
		t.Errorf("front desk sees the Patients link")
	}

	// A patient account signs in with its password only and lands on
	// the portal (its own record); patient search is refused.
	tb2 := newTab(t)
	tb2.ignore(`status of 403 \(Forbidden\) https://[^ ]+/patients$`)
	tb2.do(navigate(e.URL+"/login"), waitCSS("#login-form"), fill("#username", pia.Username, "#password", pia.Password),
		submit("#login-form button[type=submit]", "#portal-record"))
	tb2.do(navigate(e.URL+"/patients"), waitCSS("#error-message"))

	c := http.Client{Transport: &http.Transport{TLSClientConfig: tlsInsecure()}, CheckRedirect: noRedirect}
	resp, err := c.Get(e.URL + "/no-such-page")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rid := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != http.StatusNotFound || rid == "" || !strings.Contains(string(b), rid) {
		t.Errorf("404 page: status %d, request id %q in body: %v", resp.StatusCode, rid, strings.Contains(string(b), rid))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("404 page content type %q", ct)
	}
	for path, want := range map[string]int{"/static/": 404, "/static/app.css": 200, "/static/idle.js": 200, "/static/nope.js": 404} {
		resp, err := c.Get(e.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// TestBreakGlass: a physician outside a patient's care team is refused
// the chart and offered emergency access; without a reason it is refused
// with a plain message; with one the chart opens, and the grant, its
// alert-raising event and the chart reads under it (purpose ETREAT) are
// in the audit log.
func TestBreakGlass(t *testing.T) {
	e := start(t, "sqlite")
	doc := e.addUser(t, "dr.glass", "Gail Glass", true, identity.RolePhysician)
	r := e.Do(t, "POST", "/fhir/Patient", map[string]any{
		"resourceType": "Patient", "name": []any{map[string]any{"family": "Stranger", "given": []string{"Sam"}}},
		"gender": "female", "birthDate": "1980-02-03",
	}, nil).Want(t, 201)
	id := r.ID()
	tb := newTab(t)
	tb.ignore(`status of (400 \(Bad Request\)|403 \(Forbidden\))`) // the refusals this test asks for
	e.signIn(t, tb, doc, "#patient-search")
	tb.do(navigate(e.URL+"/patients/"+id), waitCSS("#break-glass"))
	if got := tb.text("#page-title"); !strings.Contains(got, "no treatment relationship") {
		t.Fatalf("chart of a stranger: %q", got)
	}
	// Without a reason (the browser's own check switched off, as a
	// hand-made request would): the server refuses with a plain message.
	eval[bool](tb, `document.getElementById("bg-reason").required = false`)
	tb.do(fill("#bg-detail", "Unconscious in the emergency department"), submit("#break-glass button[type=submit]", "#break-glass-error"))
	tb.do(fill("#bg-reason", "ETREAT", "#bg-detail", "Unconscious in the emergency department"),
		submit("#break-glass button[type=submit]", "#patient-name"))
	if got := tb.text("#patient-name"); !strings.Contains(got, "Stranger") {
		t.Fatalf("chart under the grant shows %q", got)
	}
	evs, err := e.App.Transparency().Events(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var opened, etreat bool
	for _, ev := range evs {
		if slices.Contains(ev.Patients, "Patient/"+id) {
			opened = opened || ev.Action == audit.ActionBreakGlass
			etreat = etreat || (ev.Action == audit.ActionRead && ev.Purpose == "ETREAT")
		}
	}
	if !opened || !etreat {
		t.Fatalf("audit: break-glass event %t, chart read with purpose ETREAT %t", opened, etreat)
	}

	// The patient finds that emergency access in "who accessed my
	// record", and Verify proves it is in the signed log.
	pat := e.addAccount(t, identity.User{Username: "sam.stranger", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/" + id}, false)
	tp := newTab(t)
	tp.ignore(`status of 404 \(Not Found\) https://[^ ]+/\$proof`) // a proof asked before its checkpoint is signed
	e.signInPatient(t, tp, pat, "#portal-record")
	tp.do(navigate(e.URL+"/portal/access"), waitCSS("#access-list"))
	row := tp.openVisit("Gail Glass", "emergency access")
	if row == "" {
		t.Fatalf("the emergency access is not in the patient's list: %s", tp.text("#access-list"))
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		tp.do(chromedp.Click(chromedp.CSS("#access-" + row + " button.verify")))
		got := tp.waitText("#verify-"+row, "erified")
		if strings.HasPrefix(got, "Verified") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("verify the emergency access: %q", got)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
