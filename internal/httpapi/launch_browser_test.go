package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/identity"
)

// TestSMARTLaunchBrowser checks what only a real browser can: the app
// (on another site: localhost, not 127.0.0.1) links to /oauth2/authorize;
// the SameSite=Strict flow cookie set on that cross-site navigation is
// sent with our own forms; the pages' CSP lets the forms work and the
// 303 after consent reach the app (no form-action); and the app gets a
// code it can exchange.
func TestSMARTLaunchBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("needs-chromium: no chromium binary on PATH (apt-get install -y chromium)")
	}
	e := startLaunch(t, "sqlite")
	secret := e.addLaunchUser(t, "dr.web", "Practitioner/pr-9", identity.RolePhysician)

	// The app: a page linking to the authorize URL, and its callback.
	got := make(chan url.Values, 1)
	appMux := http.NewServeMux()
	app := httptest.NewTLSServer(appMux)
	t.Cleanup(app.Close)
	appBase := strings.Replace(app.URL, "127.0.0.1", "localhost", 1)
	redirect := appBase + "/cb"
	reg := e.app.ClientAdmin()
	sc, _ := scope.ParseSet("openid fhirUser launch/patient patient/*.rs")
	id, err := reg.RegisterAppBreakGlass(t.Context(), cliAgent, smart.AppRegistration{Name: "Browser app", Public: true, RedirectURIs: []string{redirect}, Scopes: sc})
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.oauthConfig(id, "openid fhirUser launch/patient patient/*.rs")
	cfg.RedirectURL = redirect
	verifier := oauth2.GenerateVerifier()
	authURL := e.authURL(cfg, "browser-state", verifier)
	appMux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><a id="go" href="%s">Connect to phivault</a>`, strings.ReplaceAll(authURL, "&", "&amp;"))
	})
	appMux.HandleFunc("GET /cb", func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.URL.Query():
		default:
		}
		fmt.Fprint(w, "connected")
	})

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.IgnoreCertErrors, chromedp.NoSandbox)
	alloc, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancel()
	browser, cancel := chromedp.NewContext(alloc)
	defer cancel()
	// The first action starts the browser: no timeout on its context.
	if err := chromedp.Do(browser, chromedp.Navigate(appBase+"/")); err != nil {
		t.Fatalf("opening the app page: %v", err)
	}
	ctx, cancel := context.WithTimeout(browser, time.Minute)
	defer cancel()

	code := e.code(t, secret, e.clock.Now())
	pick := chromedp.CSS(`input[name="patient"][value="` + e.mine.patient + `"]`)
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#go")),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "dr.web"),
		chromedp.SendKeys(chromedp.CSS("#password"), pw),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#code")),
		chromedp.SendKeys(chromedp.CSS("#code"), code),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#q")),
		chromedp.SendKeys(chromedp.CSS("#q"), "Launchling"),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(pick),
		chromedp.Click(pick),
		chromedp.Click(chromedp.CSS(`input[name="action"][value="pick"] ~ button`)),
		chromedp.WaitVisible(chromedp.CSS(`button[value="approve"]`)),
		chromedp.Click(chromedp.CSS(`button[value="approve"]`)),
	); err != nil {
		loc, _ := chromedp.Run(browser, chromedp.Location())
		body, _ := chromedp.Run(browser, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("browser flow: %v (at %s: %.300s)", err, loc, body)
	}
	var q url.Values
	select {
	case q = <-got:
	case <-ctx.Done():
		loc, _ := chromedp.Run(browser, chromedp.Location())
		body, _ := chromedp.Run(browser, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("the app's callback was not reached (at %s: %.300s)", loc, body)
	}
	if q.Get("state") != "browser-state" || q.Get("code") == "" {
		t.Fatalf("callback query %v", q)
	}
	tok, err := cfg.Exchange(e.ctx(t), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Extra("patient") != e.mine.patient {
		t.Fatalf("patient %v", tok.Extra("patient"))
	}
}
