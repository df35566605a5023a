package webui_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestPasskeyBeginRefusals: the begin endpoints answer JSON with a plain
// message, and refuse without the form token, without a login challenge
// and without a session; the Security page needs a session.
func TestPasskeyBeginRefusals(t *testing.T) {
	e := startLocalhost(t)
	c := &http.Client{CheckRedirect: noRedirect}
	post := func(path, body string, cookies ...*http.Cookie) (int, string) {
		t.Helper()
		req, err := http.NewRequest("POST", e.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, ck := range cookies {
			req.AddCookie(ck)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: content type %q", path, ct)
		}
		var j struct{ Error string }
		if err := json.NewDecoder(resp.Body).Decode(&j); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return resp.StatusCode, j.Error
	}

	// The sign-in page's pre-session token (cookie and form field).
	resp, err := c.Get(e.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var pre *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-phivault_presession" {
			pre = ck
		}
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if pre == nil || m == nil {
		t.Fatal("no pre-session token on the sign-in page")
	}
	tok := url.QueryEscape(string(m[1]))

	for _, c := range []struct {
		name, path, body string
		cookies          []*http.Cookie
		status           int
		msg              string
	}{
		{"login begin without token", "/login/passkey/begin", "", []*http.Cookie{pre}, 403, "security token"},
		{"login begin with a wrong token", "/login/passkey/begin", "csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", []*http.Cookie{pre}, 403, "security token"},
		{"login begin without a challenge", "/login/passkey/begin", "csrf=" + tok, []*http.Cookie{pre}, 401, "Start again with your password"},
		{"login begin with a forged challenge", "/login/passkey/begin", "csrf=" + tok,
			[]*http.Cookie{pre, {Name: "__Host-phivault_challenge", Value: "forged"}}, 401, "Start again with your password"},
		{"enrol begin without a challenge", "/login/enrol/passkey/begin", "csrf=" + tok, []*http.Cookie{pre}, 401, "Start again with your password"},
		{"add begin signed out", "/security/passkeys/begin", "csrf=" + tok, []*http.Cookie{pre}, 401, "signed out"},
	} {
		status, msg := post(c.path, c.body, c.cookies...)
		if status != c.status || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: %d %q, want %d with %q", c.name, status, msg, c.status, c.msg)
		}
	}

	resp, err = c.Get(e.URL + "/security")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("security page signed out: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}
