package webui_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/web"
)

// TestFormCSRFRefusalAudited: a form POSTed from a valid session without
// its CSRF token (or marked cross-site by the browser) is refused, and
// the refusal is an audit event naming the session's account and the
// "csrf" check (issue 11 item 13); a sign-in form without its
// pre-session token leaves one too, with the address.
func TestFormCSRFRefusalAudited(t *testing.T) {
	for _, d := range apitest.Drivers {
		t.Run(d, func(t *testing.T) {
			e := start(t, d)
			doc := e.addUser(t, "dr.form", "Fern Form", true, identity.RolePhysician)
			res, err := e.App.Login.Login(t.Context(), doc.Username, doc.Password, setupAddr)
			if err != nil {
				t.Fatal(err)
			}
			st, err := e.App.Login.Verify(t.Context(), res.Challenge, "totp", doc.code(t), setupAddr)
			if err != nil {
				t.Fatal(err)
			}
			p, err := e.App.Login.Authenticate(t.Context(), st.Secret.Reveal())
			if err != nil {
				t.Fatal(err)
			}
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsInsecure()}, CheckRedirect: noRedirect}
			post := func(path, body string, cookie bool, h map[string]string) *http.Response {
				t.Helper()
				req, err := http.NewRequestWithContext(t.Context(), "POST", e.URL+path, strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				for k, v := range h {
					req.Header.Set(k, v)
				}
				if cookie {
					req.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: st.Secret.Reveal()})
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp
			}
			eventOf := func(resp *http.Response) *audit.Event {
				t.Helper()
				evs, err := e.App.Transparency().Events(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range evs {
					if ev.RequestID == resp.Header.Get("X-Request-Id") {
						return &ev
					}
				}
				return nil
			}
			for _, tc := range []struct {
				name, path, body string
				h                map[string]string
			}{
				{"search without a token", "/patients/search", "name=x", nil},
				{"search with a wrong token", "/patients/search", "name=x&csrf=" + url.QueryEscape(strings.Repeat("A", 43)), nil},
				{"sign-out without a token", "/logout", "", nil},
				{"keepalive marked cross-site", "/session/keepalive", "", map[string]string{"Sec-Fetch-Site": "cross-site"}},
			} {
				resp := post(tc.path, tc.body, true, tc.h)
				if resp.StatusCode != http.StatusForbidden {
					t.Fatalf("%s: %d, want 403", tc.name, resp.StatusCode)
				}
				ev := eventOf(resp)
				if ev == nil || ev.Outcome != audit.OutcomeDenied || ev.Agent.User != p.ID || ev.Agent.Session != p.SessionID ||
					!slices.Contains(ev.Policies, "csrf") || ev.Status != http.StatusForbidden {
					t.Fatalf("%s: event %+v, want a 403 denial naming %s, its session and the csrf check", tc.name, ev, p.ID)
				}
			}
			resp := post("/login", url.Values{"username": {doc.Username}, "password": {doc.Password}}.Encode(), false, nil)
			ev := eventOf(resp)
			if resp.StatusCode != http.StatusForbidden || ev == nil || ev.Outcome != audit.OutcomeDenied ||
				!slices.Contains(ev.Policies, "csrf") || ev.Agent.Address == "" || strings.Contains(ev.Query, doc.Username) {
				t.Fatalf("sign-in without its token: %d, event %+v", resp.StatusCode, ev)
			}
		})
	}
}
