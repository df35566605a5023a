package site

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
)

// returnCases reads testdata/return-paths.txt: whether each path may be
// returned to after sign-in.
func returnCases(t testing.TB) []struct {
	path string
	ok   bool
} {
	t.Helper()
	f, err := os.Open("testdata/return-paths.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unescape := strings.NewReplacer(`\t`, "\t", `\n`, "\n", `\r`, "\r", `\\`, `\`)
	var out []struct {
		path string
		ok   bool
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		verdict, p, found := strings.Cut(line, " ")
		if !found || (verdict != "ok" && verdict != "no") {
			t.Fatalf("bad line %q", line)
		}
		out = append(out, struct {
			path string
			ok   bool
		}{unescape.Replace(p), verdict == "ok"})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReturnPath(t *testing.T) {
	for _, c := range returnCases(t) {
		got, ok := ReturnPath(c.path)
		if ok != c.ok {
			t.Errorf("ReturnPath(%q) ok = %v, want %v", c.path, ok, c.ok)
		}
		if ok && got != c.path {
			t.Errorf("ReturnPath(%q) = %q, want it unchanged", c.path, got)
		}
	}
}

// FuzzReturnPath: whatever ReturnPath accepts stays on the origin it is
// resolved against, as a browser would resolve a Location header.
func FuzzReturnPath(f *testing.F) {
	for _, c := range returnCases(f) {
		f.Add(c.path)
	}
	base, err := url.Parse("https://ui.example/admin/users")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, ok := ReturnPath(raw)
		if !ok {
			if got != "" {
				t.Fatalf("ReturnPath(%q) refused but returned %q", raw, got)
			}
			return
		}
		if got != raw {
			t.Fatalf("ReturnPath(%q) = %q, want it unchanged", raw, got)
		}
		// Browsers drop tabs and line breaks from URLs and read "\" as
		// "/": the target must still be a path on the same origin.
		lenient := strings.NewReplacer("\t", "", "\n", "", "\r", "", `\`, "/").Replace(got)
		if !strings.HasPrefix(lenient, "/") || strings.HasPrefix(lenient, "//") {
			t.Fatalf("ReturnPath accepted %q, which a browser may read as another origin", raw)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("ReturnPath accepted %q, which does not parse: %v", raw, err)
		}
		if u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || u.Fragment != "" {
			t.Fatalf("ReturnPath accepted %q with a scheme, host, user, opaque part or fragment", raw)
		}
		if r := base.ResolveReference(u); r.Host != "ui.example" || r.Scheme != "https" {
			t.Fatalf("ReturnPath accepted %q, which resolves to %s", raw, r)
		}
		if strings.ContainsAny(got, "%#") {
			t.Fatalf("ReturnPath accepted %q with an escape or a fragment", raw)
		}
		if dec, err := url.PathUnescape(u.Path); err != nil || dec != u.Path {
			t.Fatalf("ReturnPath accepted %q, whose path decodes to something else", raw)
		}
	})
}

// A signed-out GET is remembered and taken back once; a POST and a
// sign-in page are not remembered; a tampered cookie is not followed.
func TestRememberReturn(t *testing.T) {
	take := func(cookies []*http.Cookie) string {
		r := httptest.NewRequest("GET", "/login", nil)
		for _, c := range cookies {
			if c.MaxAge >= 0 {
				r.AddCookie(c)
			}
		}
		return TakeReturn(httptest.NewRecorder(), r)
	}
	for _, c := range []struct {
		name, method, target, want string
	}{
		{"a page", "GET", "/patients/abc?x=1", "/patients/abc?x=1"},
		{"a POST", "POST", "/patients/abc/notes", "/"},
		{"the sign-in page", "GET", "/login/mfa", "/"},
		{"an encoded slash", "GET", "/%2F%2Fevil.example", "/"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			rememberReturn(w, httptest.NewRequest(c.method, "https://ui.example"+c.target, nil))
			cs := w.Result().Cookies()
			if got := take(cs); got != c.want {
				t.Errorf("after %s %s: TakeReturn = %q, want %q", c.method, c.target, got, c.want)
			}
			for _, k := range cs {
				if !k.Secure || !k.HttpOnly || k.SameSite != http.SameSiteStrictMode {
					t.Errorf("return cookie %+v is not Secure, HttpOnly, SameSite=Strict", k)
				}
			}
		})
	}
	tampered := []*http.Cookie{{Name: returnCookie, Value: "//evil.example/x"}}
	if got := take(tampered); got != "/" {
		t.Errorf("TakeReturn followed a tampered cookie to %q", got)
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/login", nil)
	r.AddCookie(&http.Cookie{Name: returnCookie, Value: "/admin/users"})
	TakeReturn(w, r)
	if cs := w.Result().Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 {
		t.Errorf("TakeReturn did not clear the cookie: %+v", cs)
	}
}
