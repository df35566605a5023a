package webui_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/identity"
)

// TestOnboarding: a security admin invites a physician in the console;
// a second admin approves the role. The physician first opens a chart
// while signed out (sent to sign in), then opens the invitation link:
// the page fills the code in from the link's fragment and drops the
// fragment, explains the password policy and refuses a short password
// in plain words; the password is set, sign-in follows with the
// authenticator set-up at first sign-in, and "continue" after the
// recovery codes opens the chart asked for at first.
func TestOnboarding(t *testing.T) {
	e := start(t, "sqlite")
	admin := e.addUser(t, "sec.admin", "Sade Admin", true, identity.RoleSecurityAdmin)
	second := e.addUser(t, "sec.second", "Sam Second", true, identity.RoleSecurityAdmin)
	pid := e.loadPatients(t, 1)[0]
	st, _, err := e.App.Record.Create(t.Context(), trusted, fhir.Resource{"resourceType": "Practitioner", "active": true}, "")
	if err != nil {
		t.Fatal(err)
	}
	e.careTeam(t, pid, "Practitioner/"+st.ID)

	tb := newTab(t)
	e.signIn(t, tb, admin, "#home")
	tb.do(navigate(e.URL+"/admin/users/new"), waitCSS("#invite-form"),
		fill("#username", "dr.new", "#display_name", "Noor New", "#fhir_user", "Practitioner/"+st.ID),
		chromedp.Click(chromedp.CSS("#role-physician")),
		submit("#invite-form button[type=submit]", "#invitation-link"))
	link := tb.text("#invitation-link")
	secret := tb.text("#enrolment-secret")
	if !strings.HasPrefix(link, e.URL+"/enrol#") || !strings.Contains(link, "token="+secret) || !strings.Contains(link, "username=dr.new") {
		t.Fatalf("invitation link %q (secret %q)", link, secret)
	}
	t2 := newTab(t)
	e.signIn(t, t2, second, "#home")
	t2.do(navigate(e.URL+"/admin/requests"), waitCSS("#requests .approve-form"))
	row := eval[string](t2, `[...document.querySelectorAll("#requests tbody tr")].find(tr => tr.textContent.includes("dr.new")).id`)
	t2.do(submit("#"+row+" .approve-form button", "#done"))

	dr := newTab(t)
	chart := e.URL + "/patients/" + pid
	dr.do(navigate(chart), waitCSS("#login-form"))

	// The link: the code is in the form, not in the address bar.
	dr.do(navigate(link), waitCSS("#onboard-form"))
	dr.checkA11y()
	dr.do(chromedp.Poll[chromedp.Void](`document.getElementById("token").value !== ""`, chromedp.WithPollingTimeout(5*time.Second)))
	if got := eval[string](dr, `document.getElementById("token").value`); got != secret {
		t.Errorf("code field %q, want the secret", got)
	}
	if got := eval[string](dr, `document.getElementById("username").value`); got != "dr.new" {
		t.Errorf("username field %q", got)
	}
	if loc := dr.location(); strings.Contains(loc, "#") || strings.Contains(loc, secret) {
		t.Errorf("the invitation stays in the address bar: %s", loc)
	}
	if got := eval[string](dr, `history.length + " " + location.href`); strings.Contains(got, secret) {
		t.Errorf("the invitation stays in the history: %s", got)
	}
	if got := dr.text("#password-policy"); !strings.Contains(got, "at least 12") || !strings.Contains(got, "breached") || !strings.Contains(got, "username") {
		t.Errorf("password policy on the page: %q", got)
	}

	// A short password (the browser's own check switched off): a plain
	// message, and the code still works afterwards.
	dr.ignore(`status of 400 \(Bad Request\)`)
	eval[bool](dr, `document.getElementById("password").minLength = 0; document.getElementById("password2").minLength = 0; true`)
	dr.do(fill("#password", "too short", "#password2", "too short"), submit("#onboard-form button[type=submit]", "#form-error"))
	if got := dr.text("#form-error"); !strings.Contains(got, "too short") || !strings.Contains(got, "12 characters") {
		t.Errorf("short password message %q", got)
	}
	if got := eval[string](dr, `document.getElementById("token").value`); got != secret {
		t.Errorf("after a refused password the code field holds %q, want the code", got)
	}
	dr.checkA11y()
	pw := "a long passphrase for noor"
	dr.do(fill("#password", pw, "#password2", pw), submit("#onboard-form button[type=submit]", "#enrolled-notice"))

	// First sign-in: password, then the authenticator app.
	dr.do(fill("#username", "dr.new", "#password", pw), submit("#login-form button[type=submit]", "#enrol-start"),
		submit("#enrol-start button[type=submit]", "#totp-secret"))
	code, err := totp.GenerateCode(dr.text("#totp-secret"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dr.do(fill("#code", code), submit("#enrol-confirm button[type=submit]", "#recovery-codes"))
	dr.do(submit("#recovery-continue", "#patient-name"))
	if got := dr.location(); got != chart {
		t.Errorf("after onboarding the browser is at %s, want %s", got, chart)
	}

	// The secret is used up, and the server never logged it.
	e.Do(t, "POST", "/auth/enrol", map[string]string{"username": "dr.new", "enrolment_secret": secret, "password": "another long passphrase"},
		apitest.H{"Content-Type": "application/json"}).Want(t, 400)
	if strings.Contains(e.Logs(), secret) {
		t.Errorf("the enrolment secret is in the server log")
	}
}

// TestOnboardingSharesEnrolLimit: attempts at POST /auth/enrol and at
// the page draw on one per-address budget, so the page adds no guesses.
func TestOnboardingSharesEnrolLimit(t *testing.T) {
	e := start(t, "sqlite")
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, CheckRedirect: noRedirect, Transport: &http.Transport{TLSClientConfig: tlsInsecure()}}
	res, err := c.Get(e.URL + "/enrol")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if res.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET /enrol: %d, csrf field found: %v", res.StatusCode, m != nil)
	}
	pub := apitest.H{"Authorization": apitest.NoAuth, "Content-Type": "application/json"}
	limited := false
	for range 30 {
		if e.Do(t, "POST", "/auth/enrol", map[string]string{"username": "x.y", "enrolment_secret": "pve_x", "password": "p"}, pub).Status == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("POST /auth/enrol never answered 429")
	}
	form := url.Values{"csrf": {string(m[1])}, "username": {"x.y"}, "token": {"pve_x"}, "password": {"a long passphrase here"}, "password2": {"a long passphrase here"}}
	res, err = c.PostForm(e.URL+"/enrol", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "too many attempts from your network") || res.Header.Get("Retry-After") == "" {
		t.Errorf("the page after the API's budget is spent: %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
}

// TestOnboardingWithoutScripts: with scripts off the person types the
// username and the code; a wrong code gets one plain message; an old
// /auth/enrol link in a browser reaches the page.
func TestOnboardingWithoutScripts(t *testing.T) {
	e := start(t, "sqlite")
	acc, err := e.App.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	u, secret, err := acc.Add(t.Context(), audit.Agent{User: "webui-test", Client: "cli"}, identity.User{Username: "res.typed", Roles: []identity.Role{identity.RoleResearcher}})
	if err != nil {
		t.Fatal(err)
	}
	tb := newTab(t)
	tb.do(chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	}))
	tb.do(navigate(e.URL+"/auth/enrol"), waitCSS("#onboard-form"))
	if got := tb.location(); got != e.URL+"/enrol" {
		t.Errorf("GET /auth/enrol in a browser ends at %s", got)
	}
	pw := "typed by hand on a keyboard"
	tb.ignore(`status of 400 \(Bad Request\)`)
	tb.do(chromedp.SendKeys(chromedp.CSS("#username"), u.Username), chromedp.SendKeys(chromedp.CSS("#token"), "pve_wrong"),
		chromedp.SendKeys(chromedp.CSS("#password"), pw), chromedp.SendKeys(chromedp.CSS("#password2"), pw),
		submit("#onboard-form button[type=submit]", "#form-error"))
	if got := tb.text("#form-error"); !strings.Contains(got, "invitation code is not right") {
		t.Errorf("wrong code message %q", got)
	}
	tb.do(chromedp.SendKeys(chromedp.CSS("#token"), secret.Reveal()), chromedp.SendKeys(chromedp.CSS("#password"), pw),
		chromedp.SendKeys(chromedp.CSS("#password2"), pw), submit("#onboard-form button[type=submit]", "#enrolled-notice"))
	if _, err := e.App.Login.Login(t.Context(), u.Username, pw, setupAddr); err != nil {
		t.Errorf("signing in with the password set on the page: %v", err)
	}
	// The JSON API is unchanged at the same address.
	r := e.Do(t, "POST", "/auth/enrol", map[string]string{"username": u.Username, "enrolment_secret": secret.Reveal(), "password": pw},
		apitest.H{"Content-Type": "application/json"})
	if r.Status != http.StatusBadRequest {
		t.Errorf("a used secret at POST /auth/enrol: %d", r.Status)
	}
}
