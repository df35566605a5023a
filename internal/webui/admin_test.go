package webui_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// auditEvents returns the audit log's events.
func (e *env) auditEvents(t *testing.T) []audit.Event {
	t.Helper()
	evs, err := e.App.Transparency().Events(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestAdminAccounts: a security admin invites a user and sees the
// enrolment secret once, ends another user's session, changes its roles
// and resets its second factor (after a confirmation step); each change
// is in the audit log with the admin as the agent.
func TestAdminAccounts(t *testing.T) {
	e := start(t, "sqlite")
	admin := e.addUser(t, "sec.admin", "Sade Admin", true, identity.RoleSecurityAdmin)
	nurse := e.addUser(t, "nurse.target", "Tara Target", true, identity.RoleNurse)

	// The nurse is signed in elsewhere.
	nt := newTab(t)
	e.signIn(t, nt, nurse, "#patient-search")

	tb := newTab(t)
	e.signIn(t, tb, admin, "#home")
	tb.do(navigate(e.URL+"/admin"), waitCSS("#admin-menu"))
	tb.checkA11y()
	if got := tb.text("#admin-menu"); !strings.Contains(got, "Accounts") || strings.Contains(got, "Break-the-glass") {
		t.Errorf("security admin menu %q", got)
	}

	// Invite: the secret is shown in the answer to the POST, and only there.
	tb.do(navigate(e.URL+"/admin/users/new"), waitCSS("#invite-form"))
	tb.checkA11y()
	tb.do(fill("#username", "new.clerk", "#display_name", "Nell <b>Clerk</b>"),
		chromedp.Click(chromedp.CSS("#role-front-desk")),
		submit("#invite-form button[type=submit]", "#enrolment-secret"))
	secret := tb.text("#enrolment-secret")
	if !strings.HasPrefix(secret, "pve_") || len(secret) < 40 {
		t.Fatalf("enrolment secret %q", secret)
	}
	if strings.Contains(tb.location(), secret) {
		t.Errorf("the secret is in the URL")
	}
	tb.do(navigate(e.URL+"/admin/users"), waitCSS("#users"))
	if html := eval[string](tb, `document.documentElement.outerHTML`); strings.Contains(html, secret) {
		t.Errorf("the secret is shown again on the accounts list")
	}
	if got := tb.text("#users"); !strings.Contains(got, "new.clerk") || !strings.Contains(got, "Nell <b>Clerk</b>") || !strings.Contains(got, "invited") {
		t.Errorf("accounts list %q", got)
	}
	// The secret works: the invited user sets a password with it.
	e.Do(t, "POST", "/auth/enrol", map[string]string{"username": "new.clerk", "enrolment_secret": secret, "password": "a long passphrase for nell"}, apitest.H{"Content-Type": "application/json"}).Want(t, 200)

	// Search (POSTed): only the match.
	tb.do(fill("#q", "TARGET"), submit("#user-search button[type=submit]", "#users"))
	if n := eval[int](tb, `document.querySelectorAll("#users tbody tr").length`); n != 1 || !strings.Contains(tb.text("#users"), "nurse.target") {
		t.Fatalf("search for target: %d rows: %q", n, tb.text("#users"))
	}
	if strings.Contains(tb.location(), "TARGET") {
		t.Errorf("the search term is in the URL")
	}
	tb.do(submit(`#users a[href^="/admin/users/"]`, "#user-facts"))
	tb.checkA11y()
	userURL := tb.location()

	// End the nurse's session: her tab is signed out.
	if n := eval[int](tb, `document.querySelectorAll("#user-sessions .revoke-form").length`); n != 1 {
		t.Fatalf("%d sessions of the nurse listed, want 1", n)
	}
	tb.do(submit("#user-sessions .revoke-form button", "#done"))
	if got := tb.text("#done"); !strings.Contains(got, "Session ended") {
		t.Errorf("after revoking: %q", got)
	}
	tb.do(waitCSS("#no-sessions"))
	nt.do(navigate(e.URL+"/sessions"), waitCSS("#login-form"))

	// Roles: nurse → nurse + auditor. The auditor role reaches PHI (the
	// trail names patients): it waits for a second administrator.
	tb.do(chromedp.Click(chromedp.CSS("#role-auditor")), submit("#roles-form button[type=submit]", "#done"))
	if got := tb.text("#user-roles"); got != "nurse" {
		t.Errorf("roles after saving %q, want nurse until approved", got)
	}
	if got := tb.text("#pending-adds"); got != "auditor" {
		t.Errorf("pending request adds %q, want auditor", got)
	}
	// The requester cannot approve it; a second security admin does.
	tb.do(navigate(e.URL+"/admin/requests"), waitCSS("#requests"))
	tb.checkA11y()
	if n := eval[int](tb, `document.querySelectorAll("#requests .approve-form").length`); n != 0 {
		t.Errorf("the requester is offered the approval of their own request (%d forms)", n)
	}
	second := e.addUser(t, "sec.second", "Sam Second", true, identity.RoleSecurityAdmin)
	t2 := newTab(t)
	e.signIn(t, t2, second, "#home")
	t2.do(navigate(e.URL+"/admin/requests"), waitCSS("#requests .approve-form"))
	row := eval[string](t2, `[...document.querySelectorAll("#requests tbody tr")].find(tr => tr.textContent.includes("nurse.target")).id`)
	t2.do(submit("#"+row+" .approve-form button", "#done"))
	if got := t2.text("#done"); !strings.Contains(got, "Approved") {
		t.Errorf("after approving: %q", got)
	}
	tb.do(navigate(userURL), waitCSS("#user-facts"))
	if got := tb.text("#user-roles"); got != "nurse,auditor" {
		t.Errorf("roles after approval %q, want nurse,auditor", got)
	}

	// MFA reset: a confirmation page first; without the box ticked the
	// server refuses (the browser's check switched off).
	if got := tb.text("#user-mfa"); got != "set up" {
		t.Fatalf("second factor before the reset: %q", got)
	}
	tb.do(submit("#reset-mfa-link", "#reset-mfa-form"))
	tb.checkA11y()
	tb.ignore(`status of 400 \(Bad Request\)`)
	eval[bool](tb, `document.getElementById("confirm").required = false`)
	tb.do(submit("#reset-mfa-form button[type=submit]", "#error-message"))
	tb.do(navigate(userURL), waitCSS("#user-facts"))
	if got := tb.text("#user-mfa"); got != "set up" {
		t.Fatalf("second factor reset without confirmation: %q", got)
	}
	tb.do(submit("#reset-mfa-link", "#reset-mfa-form"), chromedp.Click(chromedp.CSS("#confirm")), submit("#reset-mfa-form button[type=submit]", "#done"))
	if got := tb.text("#user-mfa"); got != "not set up" {
		t.Errorf("second factor after the reset: %q", got)
	}

	// Disable, then enable.
	tb.do(submit("#disable-form button", "#enable-form"))
	if got := tb.text("#user-state"); got != "disabled" {
		t.Errorf("state after disabling %q", got)
	}
	tb.do(submit("#enable-form button", "#disable-form"))

	// One's own account offers no change at all (separation of duties).
	tb.do(navigate(e.URL+"/admin/users"), waitCSS("#users"), fill("#q", "sec.admin"), submit("#user-search button[type=submit]", "#users"),
		submit(`#users a[href^="/admin/users/"]`, "#self-account"))
	if n := eval[int](tb, `document.querySelectorAll("#roles-form, #disable-form, #reset-mfa-link").length`); n != 0 {
		t.Errorf("the admin's own account page offers %d changes", n)
	}

	// SMART clients: a refused registration says why, a public app is
	// registered (client_id shown), then disabled.
	tb.do(navigate(e.URL+"/admin/clients"), waitCSS("#client-form"))
	tb.checkA11y()
	tb.do(fill("#c-name", "Refill <app>", "#c-scopes", "openid fhirUser launch/patient patient/*.rs", "#c-redirects", "ftp://bad"),
		chromedp.Click(chromedp.CSS("#kind-public")), submit("#client-form button[type=submit]", "#form-error"))
	if got := tb.text("#form-error"); !strings.Contains(got, "redirect URI") {
		t.Errorf("bad redirect: %q", got)
	}
	tb.do(fill("#c-redirects", "https://app.example/cb"), submit("#client-form button[type=submit]", "#new-client-id"))
	cid := tb.text("#new-client-id")
	if got := tb.text("#clients"); !strings.Contains(got, "Refill <app>") || !strings.Contains(got, cid) || !strings.Contains(got, "https://app.example/cb") {
		t.Errorf("clients list %q", got)
	}
	tb.do(submit(".disable-client button", "#done"))
	if got := tb.text("#clients"); !strings.Contains(got, "disabled") {
		t.Errorf("client not disabled: %q", got)
	}

	// Policy and keys, read-only.
	tb.do(navigate(e.URL+"/admin/policy"), waitCSS("#policy-facts"))
	tb.checkA11y()
	if got, want := tb.text("#policy-hash"), e.App.Authz.Policies().Hash(); got != want {
		t.Errorf("policy hash %q, want %q", got, want)
	}
	if n := eval[int](tb, `document.querySelectorAll("#policy-ids li").length`); n != len(e.App.Authz.Policies().IDs()) || n == 0 {
		t.Errorf("%d policy ids listed", n)
	}
	if got := tb.text(".policy-source"); !strings.Contains(got, "permit") {
		t.Errorf("policy source not shown")
	}
	tb.do(navigate(e.URL+"/admin/keys"), waitCSS("#key-status"))
	tb.checkA11y()
	if got := tb.text("#kek"); got != e.App.Keys.KEK().Description() {
		t.Errorf("KEK %q", got)
	}

	// Every change is audited with the admin as the agent, from the UI.
	adminID := ""
	for _, x := range mustList(t, e) {
		if x.Username == admin.Username {
			adminID = x.ID
		}
	}
	want := []audit.Action{audit.ActionClientRegister, audit.ActionClientDisable, audit.ActionUserCreate, audit.ActionSessionRevoke, audit.ActionUserSetRoles,
		audit.ActionUserGrantRequest, audit.ActionUserResetMFA, audit.ActionUserDisable, audit.ActionUserEnable}
	got := map[audit.Action]bool{}
	for _, ev := range e.auditEvents(t) {
		if ev.Agent.User == adminID && ev.Agent.Client == "webui" && ev.Outcome == audit.OutcomeSuccess {
			got[ev.Action] = true
		}
		for _, ent := range ev.Entities {
			if strings.Contains(ent, secret) {
				t.Errorf("the enrolment secret is in the audit log")
			}
		}
	}
	for _, a := range want {
		if !got[a] {
			t.Errorf("no audited %s by the admin from the web UI", a)
		}
	}
}

func mustList(t *testing.T, e *env) []identity.User {
	t.Helper()
	us, err := e.App.Store.(*sqldb.Store).Users().List(t.Context(), "", identity.MaxPage)
	if err != nil {
		t.Fatal(err)
	}
	return us
}

// TestAdminReviews: a physician opens break-the-glass; the privacy
// officer sees the review and the alert, closes the review, and the
// closing is audited. An auditor sees the audit log status.
func TestAdminReviews(t *testing.T) {
	e := start(t, "sqlite")
	doc := e.addUser(t, "dr.glass", "Gail Glass", true, identity.RolePhysician)
	po := e.addUser(t, "privacy.po", "Pria Officer", true, identity.RolePrivacyOfficer)
	aud := e.addUser(t, "auditor.au", "Audra Auditor", true, identity.RoleAuditor)
	r := e.Do(t, "POST", "/fhir/Patient", map[string]any{
		"resourceType": "Patient", "name": []any{map[string]any{"family": "Stranger"}}, "gender": "female", "birthDate": "1980-02-03",
	}, nil).Want(t, 201)
	pid := r.ID()

	dt := newTab(t)
	dt.ignore(`status of 403 \(Forbidden\)`)
	e.signIn(t, dt, doc, "#patient-search")
	dt.do(navigate(e.URL+"/patients/"+pid), waitCSS("#break-glass"),
		fill("#bg-reason", "ETREAT", "#bg-detail", "Sealed detail text"),
		submit("#break-glass button[type=submit]", "#patient-name"))

	tb := newTab(t)
	e.signIn(t, tb, po, "#home")
	tb.do(navigate(e.URL+"/admin"), waitCSS("#menu-reviews"), submit("#menu-reviews", "#reviews"))
	tb.checkA11y()
	got := tb.text("#reviews")
	if !strings.Contains(got, "dr.glass") || !strings.Contains(got, "Patient/"+pid) || !strings.Contains(got, "ETREAT") {
		t.Fatalf("review queue %q", got)
	}
	if !strings.Contains(got, "Sealed detail text") {
		t.Errorf("the clinician's reason is not shown to the reviewer: %q", got)
	}
	reasonRead := false
	for _, ev := range e.auditEvents(t) {
		reasonRead = reasonRead || (ev.Action == audit.ActionReviewRead && slices.Contains(ev.Patients, "Patient/"+pid))
	}
	if !reasonRead {
		t.Errorf("the reviewer's reading of the reason is not audited")
	}
	if a := tb.text("#alerts"); !strings.Contains(a, "break-glass") || !strings.Contains(a, "dr.glass") {
		t.Errorf("alerts %q", a)
	}
	const note = "Confirmed with the ED charge nurse: patient arrived unconscious."
	tb.do(chromedp.SetValue(chromedp.CSS(".close-review select"), "appropriate"), chromedp.SetValue(chromedp.CSS(".close-review textarea"), note),
		submit(".close-review button", "#done"))
	tb.do(waitCSS("#no-reviews"), submit("#show-all", "#reviews"))
	if got := tb.text("#alerts .alert-row"); !strings.Contains(got, "closed with its review, by Pria Officer (privacy.po)") {
		t.Errorf("the alert of the closed review: %q, want it closed with the review", got)
	}
	// "Who is this?" names the review's patient (an audited lookup).
	tb.do(submit("#reviews .who-is button", "#lookup-results"))
	if got := tb.text("#lookup-patients"); !strings.Contains(got, "Stranger") || !strings.Contains(got, "1980-02-03") {
		t.Errorf("who is the review's patient: %q", got)
	}
	tb.do(navigate(e.URL+"/admin/reviews?state=all"), waitCSS("#reviews"))
	if got := tb.text("#reviews"); !strings.Contains(got, "appropriate, by Pria Officer (privacy.po)") || !strings.Contains(got, "with a note, kept sealed") || strings.Contains(got, note) {
		t.Errorf("closed review %q: want the outcome and that a note is kept, not the note's text", got)
	}
	closed := false
	for _, ev := range e.auditEvents(t) {
		closed = closed || (ev.Action == audit.ActionReviewClose && slices.Contains(ev.Patients, "Patient/"+pid) && ev.Agent.Client == "webui")
		if b, _ := json.Marshal(ev); strings.Contains(string(b), "charge nurse") {
			t.Errorf("the reviewer's note is in the audit event")
		}
	}
	// The note is stored sealed: its text is nowhere in the database files.
	for _, f := range []string{"", "-wal"} {
		b, err := os.ReadFile(e.App.Config.Storage.SQLitePath + f)
		if err == nil && bytes.Contains(b, []byte("charge nurse")) {
			t.Errorf("the reviewer's note is in clear in the database%s file", f)
		}
	}
	if !closed {
		t.Errorf("the review's closing is not audited")
	}

	at := newTab(t)
	e.signIn(t, at, aud, "#home")
	at.do(navigate(e.URL+"/admin/log"), waitCSS("#log-status"))
	at.checkA11y()
	if n := atoi(at.text("#log-size")); n < 1 {
		t.Errorf("log size %d", n)
	}
	if got := at.text("#log-never-verified"); !strings.Contains(got, "No full verification") {
		t.Errorf("verification %q", got)
	}

	// The auditor searches the log for the patient (POSTed: the
	// reference is not in the URL) and finds the break-the-glass event.
	at.do(navigate(e.URL+"/admin/audit"), waitCSS("#audit-search"))
	at.checkA11y()
	at.do(fill("#a-patient", pid, "#a-action", "break-glass"), submit("#audit-search button[type=submit]", "#audit-results"))
	if strings.Contains(at.location(), pid) {
		t.Errorf("the patient id is in the URL")
	}
	if n := eval[int](at, `document.querySelectorAll("#audit-results tbody tr a").length`); n != 1 {
		t.Fatalf("%d break-glass events for the patient, want 1: %q", n, at.text("#audit-results"))
	}
	if got := at.text("#audit-results"); !strings.Contains(got, "dr.glass") || !strings.Contains(got, "Patient/"+pid) {
		t.Errorf("results %q", got)
	}
	at.do(submit("#audit-results tbody a", "#audit-event"))
	if got := at.text("#ev-action"); got != "break-glass" {
		t.Errorf("event detail action %q", got)
	}
	// A malformed date is refused with a message, and nothing searched.
	at.ignore(`status of 400 \(Bad Request\)`)
	at.do(navigate(e.URL+"/admin/audit"), waitCSS("#audit-search"))
	eval[string](at, `document.getElementById("a-from").type = "text"`)
	at.do(fill("#a-from", "yesterday"), submit("#audit-search button[type=submit]", "#form-error"))
	// The search and the opened event are themselves audited.
	var audID string
	for _, x := range mustList(t, e) {
		if x.Username == aud.Username {
			audID = x.ID
		}
	}
	var searched, read bool
	for _, ev := range e.auditEvents(t) {
		if ev.Agent.User != audID || ev.Agent.Client != "webui" {
			continue
		}
		searched = searched || (ev.Action == audit.ActionSearch && slices.Contains(ev.Patients, "Patient/"+pid))
		read = read || ev.Action == audit.ActionRead
	}
	if !searched || !read {
		t.Errorf("the auditor's search (%t) and read (%t) are not both audited", searched, read)
	}
}

// TestAdminRefused: a physician gets 403 on every console page and form,
// each refusal audited; a console POST without its CSRF token is refused.
func TestAdminRefused(t *testing.T) {
	e := start(t, "sqlite")
	doc := e.addUser(t, "dr.nosy", "Nora Nosy", true, identity.RolePhysician)
	admin := e.addUser(t, "sec.csrf", "Cass Admin", true, identity.RoleSecurityAdmin)
	var victim string
	for _, x := range mustList(t, e) {
		if x.Username == admin.Username {
			victim = x.ID
		}
	}
	tb := newTab(t)
	tb.ignore(`status of 403 \(Forbidden\)`)
	e.signIn(t, tb, doc, "#patient-search")
	if n := eval[int](tb, `document.querySelectorAll('a[href="/admin"]').length`); n != 0 {
		t.Errorf("a physician sees the Administration link")
	}
	tok := eval[string](tb, `document.querySelector('input[name="csrf"]').value`)
	fetch := func(method, path, body string) (int, string) {
		t.Helper()
		js := `fetch(` + jsString(path) + `, {method: ` + jsString(method) + `, headers: {"Content-Type": "application/x-www-form-urlencoded"}` +
			map[bool]string{true: `, body: ` + jsString(body), false: ``}[method == "POST"] + `}).then(async r => [String(r.status), await r.text()])`
		v := eval[[]string](tb, js)
		return atoi(v[0]), v[1]
	}
	before := len(e.auditEvents(t))
	pages := []string{"/admin", "/admin/users", "/admin/users/new", "/admin/users/" + victim, "/admin/users/" + victim + "/reset-mfa", "/admin/reviews", "/admin/log", "/admin/audit", "/admin/audit/1", "/admin/policy", "/admin/keys", "/admin/clients"}
	for _, p := range pages {
		if status, body := fetch("GET", p, ""); status != http.StatusForbidden || !strings.Contains(body, "Not available to your role") {
			t.Errorf("physician GET %s: %d", p, status)
		}
	}
	forms := []string{"/admin/users", "/admin/users/new", "/admin/users/" + victim + "/roles", "/admin/users/" + victim + "/disable",
		"/admin/users/" + victim + "/enable", "/admin/users/" + victim + "/reset-mfa", "/admin/users/" + victim + "/sessions/x/revoke", "/admin/reviews/x/close", "/admin/audit", "/admin/clients", "/admin/clients/x/disable",
		"/admin/clients/x/request", "/admin/requests/rqc_x/approve", "/admin/requests/rqc_x/reject"}
	for _, p := range forms {
		if status, _ := fetch("POST", p, "confirm=yes&role=physician&outcome=appropriate&csrf="+url.QueryEscape(tok)); status != http.StatusForbidden {
			t.Errorf("physician POST %s: %d", p, status)
		}
	}
	denied := 0
	for _, ev := range e.auditEvents(t)[before:] {
		if ev.Action == audit.ActionUserAdmin && ev.Outcome == audit.OutcomeDenied {
			denied++
		}
	}
	if denied != len(pages)+len(forms) {
		t.Errorf("%d refusals audited, want %d", denied, len(pages)+len(forms))
	}
	if x := mustList(t, e); slices.ContainsFunc(x, func(u identity.User) bool { return u.Disabled }) {
		t.Errorf("a refused form changed an account")
	}

	// The security admin's own form without its token: refused, nothing changed.
	at := newTab(t)
	at.ignore(`status of 403 \(Forbidden\)`)
	e.signIn(t, at, admin, "#home")
	at.do(navigate(e.URL+"/admin/users/"+victim), waitCSS("#user-facts"))
	js := `fetch("/admin/users/` + victim + `/roles", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "role=physician"}).then(async r => [String(r.status), await r.text()])`
	v := eval[[]string](at, js)
	if atoi(v[0]) != http.StatusForbidden || !strings.Contains(v[1], "Form refused") {
		t.Errorf("roles without CSRF token: %s", v[0])
	}
	at.do(navigate(e.URL+"/admin/users/"+victim), waitCSS("#user-facts"))
	if got := at.text("#user-roles"); got != "security-admin" {
		t.Errorf("roles after a refused form: %q", got)
	}

	// Signed out: the console sends the browser to sign in.
	c := http.Client{Transport: &http.Transport{TLSClientConfig: tlsInsecure()}, CheckRedirect: noRedirect}
	resp, err := c.Get(e.URL + "/admin/users")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("signed out /admin/users: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}
