package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/keys"
)

// The browser tests drive Chromium (headless) with its virtual
// authenticator against a real phivault on http://localhost:<port>:
// localhost is a secure context, so WebAuthn and __Host- cookies work
// without a certificate. The page is a small harness served on the
// same origin under a strict CSP (script-src 'self', no inline script)
// that loads the product's /static/webauthn.js. The same handler is
// also served on a second port: another origin with the same RP ID
// ("localhost"), i.e. a page the browser lets use the credential but
// the server must refuse.

// chromiumPath is where the CI image installs Chromium.
const chromiumPath = "/usr/bin/chromium"

// harnessCSP is the strict policy the harness page runs under.
const harnessCSP = "default-src 'none'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type browserEnv struct {
	app     *app.App
	base    string // http://localhost:<port>, the configured origin
	other   string // http://localhost:<other port>: another origin, same RP ID
	ip      string // http://127.0.0.1:<port>: another origin, other RP ID
	hasher  *password.Hasher
	logs    *bytes.Buffer
	logMu   *sync.Mutex
	browser context.Context
}

// harness serves testdata/browser under /test/ with the strict CSP,
// and everything else from phivault.
func harness(t *testing.T, next http.Handler) http.Handler {
	t.Helper()
	files := map[string]string{"/test/harness.html": "text/html; charset=utf-8", "/test/harness.js": "text/javascript; charset=utf-8"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct, ok := files[r.URL.Path]
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		b, err := os.ReadFile(filepath.Join("testdata", "browser", filepath.Base(r.URL.Path)))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Content-Security-Policy", harnessCSP)
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(b)
	})
}

func listen(t *testing.T) (net.Listener, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return l, port
}

// startBrowserEnv starts phivault (SQLite) on two loopback ports and one
// headless Chromium for the whole test.
func startBrowserEnv(t *testing.T) *browserEnv {
	t.Helper()
	chromium := chromiumPath
	if _, err := os.Stat(chromium); err != nil {
		p, err := exec.LookPath("chromium")
		if err != nil {
			t.Skip("needs-chromium: " + chromiumPath + " not found (apt-get install -y chromium)")
		}
		chromium = p
	}
	dir := t.TempDir()
	c := config.Default(dir)
	c.Storage.Driver = "sqlite"
	c.Storage.SQLitePath = c.Path(c.Storage.SQLitePath)
	if err := os.MkdirAll(c.Path("keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	c.Keys.KeyFile = c.Path(c.Keys.KeyFile)
	if err := keys.CreateKeyFile(c.Keys.KeyFile); err != nil {
		t.Fatal(err)
	}
	l1, p1 := listen(t)
	l2, p2 := listen(t)
	c.Server.BaseURL = "http://localhost:" + p1
	h, err := password.NewHasher(password.HasherConfig{Params: password.Params{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	logs, mu := &bytes.Buffer{}, &sync.Mutex{}
	logger := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	a, err := app.Open(t.Context(), c, logger, app.WithLoginOptions(func(o *login.Options) {
		o.Hasher = h
		o.AddressLimits = password.AddressLimits{Burst: 1000}
	}))
	if err != nil {
		t.Fatal(err)
	}
	handler := harness(t, a.Handler())
	s1 := &httptest.Server{Listener: l1, Config: &http.Server{Handler: handler}}
	s2 := &httptest.Server{Listener: l2, Config: &http.Server{Handler: handler}}
	s1.Start()
	s2.Start()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.UserDataDir(filepath.Join(dir, "chromium")))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		s1.Close()
		s2.Close()
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	})
	// Start the browser now, so a missing or broken Chromium is reported once.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return &browserEnv{app: a, base: c.Server.BaseURL, other: "http://localhost:" + p2, ip: "http://127.0.0.1:" + p1,
		hasher: h, logs: logs, logMu: mu, browser: browser}
}

func (e *browserEnv) addUser(t *testing.T, username string) identity.User {
	t.Helper()
	env := &authEnv{app: e.app, hasher: e.hasher}
	return env.addUser(t, username, pw, identity.RoleNurse)
}

// tab opens a new tab with WebAuthn enabled, bounded by a deadline.
func (e *browserEnv) tab(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(e.browser)
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelT(); cancel() })
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	return ctx
}

// authenticator attaches a virtual authenticator (CTAP 2.1, resident
// keys, user verification that succeeds) on transport tr: "internal"
// is a platform authenticator (Chrome allows one per tab), "usb" a
// security key.
func authenticator(t *testing.T, ctx context.Context, tr webauthn.AuthenticatorTransport) webauthn.AuthenticatorID {
	t.Helper()
	r, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
			Transport: tr, HasResidentKey: true, HasUserVerification: true,
			IsUserVerified: true, AutomaticPresenceSimulation: true,
		}})
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	return r.AuthenticatorID
}

// addCredential is WebAuthn.addCredential without the CMTG fields that
// cdproto's Credential always sends and this Chromium refuses for an
// authenticator without that extension.
var addCredential = cdp.Command[addCredentialParams, cdp.Empty]{Method: webauthn.CommandAddCredential}

type addCredentialParams struct {
	AuthenticatorID webauthn.AuthenticatorID `json:"authenticatorId"`
	Credential      plainCredential          `json:"credential"`
}

type plainCredential struct {
	CredentialID         []byte  `json:"credentialId"`
	IsResidentCredential bool    `json:"isResidentCredential"`
	RpID                 string  `json:"rpId"`
	PrivateKey           []byte  `json:"privateKey"`
	UserHandle           []byte  `json:"userHandle,omitempty"`
	SignCount            float64 `json:"signCount"`
}

func credentials(t *testing.T, ctx context.Context, id webauthn.AuthenticatorID) []*webauthn.Credential {
	t.Helper()
	r, err := chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id})
	if err != nil {
		t.Fatalf("WebAuthn.getCredentials: %v", err)
	}
	return r.Credentials
}

func open(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate %s: %v", url, err)
	}
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof window.phivaultWebAuthn === "object" && typeof window.harness === "object" && window.phivaultWebAuthn.supported()`))
	if err != nil || !ok {
		t.Fatalf("harness at %s did not load webauthn.js under the CSP (%v)", url, err)
	}
}

// eval runs a promise-returning expression; failures of the promise come
// back as "error:<status>:<message>".
func eval(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(`+expr+`).then(function (v) { return typeof v === "string" ? v : JSON.stringify(v); },
		function (e) { return "error:" + (e.status === undefined ? "" : e.status) + ":" + e.message; })`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

func js(s string) string { return fmt.Sprintf("%q", s) }

func TestPasskeyBrowser(t *testing.T) {
	e := startBrowserEnv(t)
	e.addUser(t, "nurse.chrome")
	ctx := e.tab(t)
	first := authenticator(t, ctx, webauthn.AuthenticatorTransportInternal)
	open(t, ctx, e.base+"/test/harness.html")

	var csrf string
	t.Run("enrol with a passkey after the password", func(t *testing.T) {
		out := eval(t, ctx, `harness.login("nurse.chrome", `+js(pw)+`).then(function (r) {
			if (!r.enrollment_required || r.methods.indexOf("webauthn") < 0) { throw new Error("no passkey enrolment offered"); }
			return phivaultWebAuthn.enrol(r.challenge, "Chromium");
		}).then(function (r) { return JSON.stringify({codes: r.recovery_codes.length, csrf: r.csrf_token, name: r.passkey.name}); })`)
		if !strings.Contains(out, `"codes":10`) || !strings.Contains(out, `"name":"Chromium"`) {
			t.Fatalf("enrol: %s", out)
		}
		csrf = strings.Split(strings.Split(out, `"csrf":"`)[1], `"`)[0]
		if st := eval(t, ctx, `harness.status("/fhir/Patient?identifier=x")`); st != "200" {
			t.Fatalf("FHIR search with the browser's session cookie: %s", st)
		}
		creds := credentials(t, ctx, first)
		if len(creds) != 1 || creds[0].RpID != "localhost" || !creds[0].IsResidentCredential {
			t.Fatalf("virtual authenticator credentials: %+v", creds)
		}
	})

	t.Run("sign in with password and passkey", func(t *testing.T) {
		if st := eval(t, ctx, `harness.logout(`+js(csrf)+`)`); st != "204" {
			t.Fatalf("logout: %s", st)
		}
		if st := eval(t, ctx, `harness.status("/fhir/Patient?identifier=x")`); st != "401" {
			t.Fatalf("FHIR after logout: %s", st)
		}
		before := credentials(t, ctx, first)[0].SignCount
		out := eval(t, ctx, `harness.login("nurse.chrome", `+js(pw)+`).then(function (r) {
			if (r.methods.indexOf("webauthn") < 0) { throw new Error("webauthn not offered: " + r.methods); }
			return phivaultWebAuthn.signIn(r.challenge);
		}).then(function (r) { return r.csrf_token; })`)
		if strings.HasPrefix(out, "error:") {
			t.Fatalf("sign-in: %s", out)
		}
		csrf = out
		if st := eval(t, ctx, `harness.status("/fhir/Patient?identifier=x")`); st != "200" {
			t.Fatalf("FHIR after passkey sign-in: %s", st)
		}
		if after := credentials(t, ctx, first)[0].SignCount; after <= before {
			t.Errorf("sign count %v -> %v, want an increase", before, after)
		}
	})

	t.Run("register a second authenticator", func(t *testing.T) {
		saved := credentials(t, ctx, first)
		if _, err := chromedp.Call(ctx, webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: first}); err != nil {
			t.Fatal(err)
		}
		second := authenticator(t, ctx, webauthn.AuthenticatorTransportUsb)
		out := eval(t, ctx, `phivaultWebAuthn.add(`+js(csrf)+`, "Security key").then(function () { return phivaultWebAuthn.list(); })
			.then(function (r) { return r.passkeys.map(function (p) { return p.name; }).join(","); })`)
		if out != "Chromium,Security key" {
			t.Fatalf("passkeys after adding: %s", out)
		}
		if st := eval(t, ctx, `harness.logout(`+js(csrf)+`)`); st != "204" {
			t.Fatalf("logout: %s", st)
		}
		out = eval(t, ctx, `harness.login("nurse.chrome", `+js(pw)+`).then(function (r) { return phivaultWebAuthn.signIn(r.challenge); })
			.then(function (r) { return r.csrf_token; })`)
		if strings.HasPrefix(out, "error:") {
			t.Fatalf("sign-in with the second authenticator: %s", out)
		}
		csrf = out
		if n := len(credentials(t, ctx, second)); n != 1 {
			t.Fatalf("second authenticator holds %d credentials", n)
		}
		// Put the first credential back on a platform authenticator.
		if _, err := chromedp.Call(ctx, webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: second}); err != nil {
			t.Fatal(err)
		}
		restored := authenticator(t, ctx, webauthn.AuthenticatorTransportInternal)
		if _, err := chromedp.Call(ctx, addCredential, addCredentialParams{AuthenticatorID: restored, Credential: plainCredential{
			CredentialID: saved[0].CredentialID, IsResidentCredential: true, RpID: saved[0].RpID, PrivateKey: saved[0].PrivateKey,
			UserHandle: saved[0].UserHandle, SignCount: saved[0].SignCount}}); err != nil {
			t.Fatal(err)
		}
		out = eval(t, ctx, `harness.login("nurse.chrome", `+js(pw)+`).then(function (r) { return phivaultWebAuthn.signIn(r.challenge); })
			.then(function (r) { return "ok"; })`)
		if out != "ok" {
			t.Fatalf("sign-in with the first authenticator again: %s", out)
		}
	})

	t.Run("another origin with the same RP ID is refused by the server", func(t *testing.T) {
		open(t, ctx, e.other+"/test/harness.html")
		out := eval(t, ctx, `harness.login("nurse.chrome", `+js(pw)+`).then(function (r) { return phivaultWebAuthn.signIn(r.challenge); })
			.then(function () { return "signed in"; })`)
		if out != "error:401:the passkey was not accepted" {
			t.Fatalf("sign-in from %s: %s", e.other, out)
		}
		e.logMu.Lock()
		logged := e.logs.String()
		e.logMu.Unlock()
		if !strings.Contains(logged, "Error validating origin") {
			t.Errorf("the refusal was not for the origin")
		}
	})

	t.Run("another origin outside the RP ID cannot use the credential", func(t *testing.T) {
		open(t, ctx, e.ip+"/test/harness.html")
		out := eval(t, ctx, `harness.login("nurse.chrome", `+js(pw)+`).then(function (r) { return phivaultWebAuthn.signIn(r.challenge); })
			.then(function () { return "signed in"; })`)
		if !strings.HasPrefix(out, "error:0:SecurityError") {
			t.Fatalf("sign-in from %s: %s, want the browser's SecurityError", e.ip, out)
		}
	})
}
