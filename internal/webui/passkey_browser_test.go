package webui_test

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/keys"
)

// startLocalhost is start for passkeys: WebAuthn needs a domain for the
// RP ID (apitest's base URL is an IP address, so passkeys are off there)
// and a secure context without certificate errors (Chrome refuses
// WebAuthn on a certificate it does not trust, even with
// --ignore-certificate-errors). http://localhost:<port> is both: a
// secure context, where __Host- cookies work too. Only the exported
// fields of the apitest.Server are set: these tests use the browser and
// the app, never the API client.
func startLocalhost(t *testing.T) *env {
	t.Helper()
	h, err := password.NewHasher(password.HasherConfig{Params: password.Params{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	c := config.Default(t.TempDir())
	c.Storage.Driver = "sqlite"
	c.Storage.SQLitePath = c.Path(c.Storage.SQLitePath)
	if err := os.MkdirAll(c.Path("keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	c.Keys.KeyFile = c.Path(c.Keys.KeyFile)
	if err := keys.CreateKeyFile(c.Keys.KeyFile); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	c.Server.BaseURL = "http://localhost:" + port
	a, err := app.Open(t.Context(), c, slog.New(slog.DiscardHandler), app.WithLoginOptions(func(o *login.Options) {
		o.Hasher = h
		o.AddressLimits.Burst = 1000
	}))
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: a.Handler()}}
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	})
	return &env{Server: &apitest.Server{URL: c.Server.BaseURL, Driver: "sqlite", App: a}, hasher: h}
}

// authenticator enables WebAuthn in the tab and attaches a virtual
// authenticator (CTAP 2.1, resident keys, user verification that
// succeeds) on transport tr: "internal" is a platform authenticator,
// "usb" a security key.
func (tb *tab) authenticator(tr webauthn.AuthenticatorTransport) webauthn.AuthenticatorID {
	tb.t.Helper()
	if _, err := chromedp.Call(tb.ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		tb.t.Fatalf("WebAuthn.enable: %v", err)
	}
	r, err := chromedp.Call(tb.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
			Transport: tr, HasResidentKey: true, HasUserVerification: true,
			IsUserVerified: true, AutomaticPresenceSimulation: true,
		}})
	if err != nil {
		tb.t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	return r.AuthenticatorID
}

// passkeyNames lists the names in the Security page's passkey table.
func (tb *tab) passkeyNames() []string {
	return eval[[]string](tb, `Array.from(document.querySelectorAll("#passkeys .passkey-name")).map(function (td) { return td.firstChild.textContent.trim(); })`)
}

// TestPasskeyUI: a new account enrols a passkey at first sign-in instead
// of the app and sees its recovery codes once; signs out and in again
// with password + passkey (after a failed ceremony shows a plain
// message); on the Security page adds a second passkey
// (a security key), renames it, removes the first, and is refused,
// with the service's plain message, removing the last one.
func TestPasskeyUI(t *testing.T) {
	e := startLocalhost(t)
	nurse := e.addUser(t, "nurse.key", "Kim Key", false, identity.RoleNurse)
	tb := newTab(t)
	tb.ignore(`status of 409 \(Conflict\)`) // the refused removal this test asks for
	platform := tb.authenticator(webauthn.AuthenticatorTransportInternal)

	// First sign-in: enrol a passkey instead of the app.
	tb.do(
		navigate(e.URL+"/login"),
		waitCSS("#login-form"),
		fill("#username", nurse.Username, "#password", nurse.Password),
		submit("#login-form button[type=submit]", "#passkey-enrol"),
		fill("#passkey-name", "Work laptop"),
		submit("#passkey-enrol-button", "#recovery-codes"),
	)
	if got := tb.text("main .notice"); !strings.Contains(got, "passkey is set up") {
		t.Fatalf("after passkey enrolment: %q", got)
	}
	if n := eval[int](tb, `document.querySelectorAll("#recovery-codes li").length`); n < 8 {
		t.Fatalf("%d recovery codes shown", n)
	}
	// No challenge or ceremony on any page, nor in the URL.
	if html := eval[string](tb, `document.documentElement.outerHTML`); strings.Contains(html, "ceremony\" value=\"ey") || strings.Contains(tb.location(), "challenge") {
		t.Fatalf("secret state on the page or in the URL")
	}

	// Sign out, then password + passkey.
	tb.do(
		navigate(e.URL+"/"),
		waitCSS("#sign-out"),
		submit("#sign-out", "#page-title"),
		navigate(e.URL+"/login"),
		waitCSS("#login-form"),
		fill("#username", nurse.Username, "#password", nurse.Password),
		submit("#login-form button[type=submit]", "#passkey-signin"),
	)
	// A failed ceremony (the authenticator cannot verify the user):
	// a plain message, and the page stays.
	if _, err := chromedp.Call(tb.ctx, webauthn.SetUserVerified, webauthn.SetUserVerifiedParams{AuthenticatorID: platform, IsUserVerified: false}); err != nil {
		t.Fatal(err)
	}
	tb.do(chromedp.Click(chromedp.CSS("#passkey-button")), chromedp.WaitVisible(chromedp.CSS("#passkey-error")))
	if got := tb.text("#passkey-error"); !strings.Contains(got, "not used") {
		t.Fatalf("failed passkey step: %q", got)
	}
	if _, err := chromedp.Call(tb.ctx, webauthn.SetUserVerified, webauthn.SetUserVerifiedParams{AuthenticatorID: platform, IsUserVerified: true}); err != nil {
		t.Fatal(err)
	}
	tb.do(submit("#passkey-button", "#patient-search"))
	if got := tb.text("#who-name"); got != "Kim Key" {
		t.Fatalf("signed in as %q", got)
	}

	// Security page: the passkey is listed; add a security key (the
	// platform authenticator removed, so the browser uses the new one).
	tb.do(navigate(e.URL+"/security"), waitCSS("#passkey-add"))
	if got := tb.passkeyNames(); len(got) != 1 || got[0] != "Work laptop" {
		t.Fatalf("passkeys %q, want [Work laptop]", got)
	}
	if _, err := chromedp.Call(tb.ctx, webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: platform}); err != nil {
		t.Fatal(err)
	}
	tb.authenticator(webauthn.AuthenticatorTransportUsb)
	tb.do(fill("#passkey-name", "Security key"), submit("#passkey-add-button", "#form-notice"))
	if got := tb.passkeyNames(); len(got) != 2 || got[1] != "Security key" {
		t.Fatalf("after adding: %q", got)
	}

	// Rename the key, remove the laptop.
	tb.do(
		fill("#passkeys tbody tr:nth-child(2) .rename input[name=name]", "Blue key"),
		submit("#passkeys tbody tr:nth-child(2) .rename button", "#form-notice"),
	)
	if got := tb.passkeyNames(); len(got) != 2 || got[1] != "Blue key" {
		t.Fatalf("after renaming: %q", got)
	}
	tb.do(submit("#passkeys tbody tr:nth-child(1) .remove button", "#form-notice"))
	if got := tb.passkeyNames(); len(got) != 1 || got[0] != "Blue key" {
		t.Fatalf("after removing: %q", got)
	}

	// The last second factor cannot go: the service's refusal, plainly.
	tb.do(submit("#passkeys tbody tr:nth-child(1) .remove button", "#form-error"))
	if got := tb.text("#form-error"); !strings.Contains(got, "last second factor") {
		t.Fatalf("removing the last passkey: %q", got)
	}
	if got := tb.passkeyNames(); len(got) != 1 {
		t.Fatalf("after the refused removal: %q", got)
	}
	tb.checkA11y()
}

// TestEmergencyBanner: after break-the-glass the chart carries the
// banner with the grant's end; a care-team patient's chart has none.
func TestEmergencyBanner(t *testing.T) {
	e := start(t, "sqlite")
	doc := e.addUser(t, "dr.banner", "Bea Banner", true, identity.RolePhysician)
	mk := func(family string) string {
		return e.Do(t, "POST", "/fhir/Patient", map[string]any{
			"resourceType": "Patient", "name": []any{map[string]any{"family": family, "given": []string{"Pat"}}},
			"gender": "female", "birthDate": "1980-02-03",
		}, nil).Want(t, 201).ID()
	}
	stranger, own := mk("Stranger"), mk("Own")
	e.treat(t, own)
	tb := newTab(t)
	tb.ignore(`status of 403 \(Forbidden\)`) // the refusal before breaking the glass
	e.signIn(t, tb, doc, "#patient-search")

	tb.do(navigate(e.URL+"/patients/"+own), waitCSS("#patient-name"))
	if n := eval[int](tb, `document.querySelectorAll("#emergency-banner").length`); n != 0 {
		t.Fatalf("banner on a care-team patient's chart")
	}
	tb.do(navigate(e.URL+"/patients/"+stranger), waitCSS("#break-glass"),
		fill("#bg-reason", "ETREAT", "#bg-detail", "Unconscious in the emergency department"),
		submit("#break-glass button[type=submit]", "#emergency-banner"))
	got := tb.text("#emergency-banner")
	if !regexp.MustCompile(`^Emergency access until \d\d:\d\d UTC — every view is recorded and will be reviewed\.$`).MatchString(strings.Join(strings.Fields(got), " ")) {
		t.Fatalf("banner %q", got)
	}
	if role := eval[string](tb, `document.getElementById("emergency-banner").getAttribute("role")`); role != "alert" {
		t.Fatalf("banner role %q", role)
	}
	// The grant is for that patient only.
	tb.do(navigate(e.URL+"/patients/"+own), waitCSS("#patient-name"))
	if n := eval[int](tb, `document.querySelectorAll("#emergency-banner").length`); n != 0 {
		t.Fatalf("banner on another patient's chart")
	}
}
