package smart

import (
	"bufio"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
)

const goodChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

func goodAuthorize() url.Values {
	return url.Values{"response_type": {"code"}, "client_id": {"app"}, "redirect_uri": {"https://app.example.org/cb"},
		"scope": {"openid launch/patient patient/*.rs"}, "state": {"st"}, "aud": {"https://phivault.example.org/fhir"},
		"code_challenge": {goodChallenge}, "code_challenge_method": {"S256"}, "nonce": {"n"}}
}

func TestParseAuthorize(t *testing.T) {
	for _, c := range []struct {
		name     string
		edit     func(url.Values)
		page     bool   // refused without a redirect
		code     string // redirectable error, "" if none
		keepsSt8 bool
	}{
		{name: "good"},
		{name: "no client_id", edit: func(q url.Values) { q.Del("client_id") }, page: true},
		{name: "repeated redirect_uri", edit: func(q url.Values) { q.Add("redirect_uri", "https://x") }, page: true},
		{name: "long client_id", edit: func(q url.Values) { q.Set("client_id", strings.Repeat("a", 300)) }, page: true},
		{name: "no state", edit: func(q url.Values) { q.Del("state") }, code: "invalid_request"},
		{name: "binary state", edit: func(q url.Values) { q.Set("state", "a\x00") }, code: "invalid_request"},
		{name: "no PKCE", edit: func(q url.Values) { q.Del("code_challenge_method") }, code: "invalid_request", keepsSt8: true},
		{name: "plain PKCE", edit: func(q url.Values) { q.Set("code_challenge_method", "plain") }, code: "invalid_request", keepsSt8: true},
		{name: "short challenge", edit: func(q url.Values) { q.Set("code_challenge", "abc") }, code: "invalid_request", keepsSt8: true},
		{name: "response_type token", edit: func(q url.Values) { q.Set("response_type", "token") }, code: "unsupported_response_type", keepsSt8: true},
		{name: "EHR launch", edit: func(q url.Values) { q.Set("launch", "x") }, code: "invalid_request", keepsSt8: true},
		{name: "no aud", edit: func(q url.Values) { q.Del("aud") }, code: "invalid_request", keepsSt8: true},
		{name: "bad scope", edit: func(q url.Values) { q.Set("scope", "patient/x.rs") }, code: "invalid_scope", keepsSt8: true},
		{name: "repeated scope", edit: func(q url.Values) { q.Add("scope", "openid") }, code: "invalid_request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := goodAuthorize()
			if c.edit != nil {
				c.edit(q)
			}
			req, err := ParseAuthorize(q)
			var ae *AuthorizeError
			switch {
			case c.page:
				if !errors.As(err, &ae) || ae.Redirect {
					t.Fatalf("err %v, want a page error", err)
				}
				return
			case err != nil:
				t.Fatalf("err %v, want a redirectable result", err)
			case c.code == "" && req.Err != nil:
				t.Fatalf("req.Err %v, want none", req.Err)
			case c.code != "" && (req.Err == nil || req.Err.Code != c.code || !req.Err.Redirect):
				t.Fatalf("req.Err %v, want %s", req.Err, c.code)
			}
			if c.keepsSt8 && req.State != "st" {
				t.Errorf("state %q not kept for the error redirect", req.State)
			}
			if c.code == "" && (req.Challenge != goodChallenge || req.Nonce != "n" || req.RawScope == "") {
				t.Errorf("parsed %+v", req)
			}
		})
	}
}

// FuzzParseAuthorize: any query parses without panic, a page error is
// never redirectable, and an accepted request respects every bound.
func FuzzParseAuthorize(f *testing.F) {
	file, err := os.Open("testdata/authorize_requests.txt")
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f.Add(sc.Text())
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		req, err := ParseAuthorize(q)
		if err != nil {
			var ae *AuthorizeError
			if !errors.As(err, &ae) || ae.Redirect {
				t.Fatalf("pre-redirect error %v is not a page error", err)
			}
			return
		}
		if req.ClientID == "" || req.RedirectURI == "" || len(req.RedirectURI) > MaxRedirectURILen {
			t.Fatalf("accepted client_id/redirect_uri out of bounds")
		}
		if req.Err != nil {
			if !req.Err.Redirect || req.Err.Code == "" {
				t.Fatalf("req.Err %v is not redirectable", req.Err)
			}
			return
		}
		if req.State == "" || len(req.State) > MaxStateLen || len(req.Challenge) != challengeLen || req.Scope.Empty() || len(req.Nonce) > MaxNonceLen {
			t.Fatalf("accepted request out of bounds: state %d challenge %d nonce %d", len(req.State), len(req.Challenge), len(req.Nonce))
		}
	})
}

func TestRedirectURIRegistration(t *testing.T) {
	for _, c := range []struct {
		uri string
		ok  bool
	}{
		{"https://app.example.org/cb", true},
		{"http://127.0.0.1:8080/cb", true},
		{"http://localhost/cb", true},
		{"com.example.app:/cb", true},
		{"http://app.example.org/cb", false},
		{"https://app.example.org/cb#frag", false},
		{"https://user:pw@app.example.org/cb", false},
		{"javascript:alert(1)", false},
		{"/relative", false},
		{"", false},
	} {
		if err := checkRedirectURI(c.uri); (err == nil) != c.ok {
			t.Errorf("checkRedirectURI(%q) = %v, want ok=%t", c.uri, err, c.ok)
		}
	}
}

func TestPKCEKnownAnswer(t *testing.T) {
	// RFC 7636 Appendix B.
	if got := pkceS256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); got != goodChallenge {
		t.Fatalf("S256 = %s, want %s", got, goodChallenge)
	}
	if isVerifier("short") || !isVerifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") {
		t.Fatal("verifier syntax")
	}
}
