package webui_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/web"
)

// webSession is a signed-in user's pages without a browser: the real
// server over TLS, the session cookie the login service issued (password
// and TOTP, as the sign-in pages do) and its CSRF token on every POST.
type webSession struct {
	e      *env
	secret string
	csrf   string
	c      *http.Client
}

// webPage is one answer of the UI.
type webPage struct {
	Status   int
	Body     string
	Location string
}

// sessionFor signs u (an enrolled workforce account) in.
func (e *env) sessionFor(t *testing.T, u *user) *webSession {
	t.Helper()
	lg := e.App.Login
	res, err := lg.Login(t.Context(), u.Username, u.Password, setupAddr)
	if err != nil || !res.MFARequired {
		t.Fatalf("login %s: %v %+v", u.Username, err, res)
	}
	st, err := lg.Verify(t.Context(), res.Challenge, login.MethodTOTP, u.code(t), setupAddr)
	if err != nil {
		t.Fatalf("second factor %s: %v", u.Username, err)
	}
	return &webSession{e: e, secret: st.Secret.Reveal(), csrf: st.CSRF,
		c: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsInsecure()}, CheckRedirect: noRedirect}}
}

func (s *webSession) do(t *testing.T, method, path string, form url.Values) webPage {
	t.Helper()
	var body io.Reader
	if form != nil {
		form.Set("csrf", s.csrf)
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.e.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: s.secret})
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", s.e.URL)
	}
	resp, err := s.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return webPage{Status: resp.StatusCode, Body: string(b), Location: resp.Header.Get("Location")}
}

// get fetches path.
func (s *webSession) get(t *testing.T, path string) webPage {
	t.Helper()
	return s.do(t, "GET", path, nil)
}

// post submits form to path (with the CSRF token).
func (s *webSession) post(t *testing.T, path string, form url.Values) webPage {
	t.Helper()
	return s.do(t, "POST", path, form)
}

// follow submits form and follows the redirect (POST-redirect-GET).
func (s *webSession) follow(t *testing.T, path string, form url.Values) webPage {
	t.Helper()
	p := s.post(t, path, form)
	if p.Status != http.StatusSeeOther && p.Status != http.StatusFound {
		t.Fatalf("POST %s: %d, want a redirect\n%s", path, p.Status, p.Body)
	}
	return s.get(t, p.Location)
}
