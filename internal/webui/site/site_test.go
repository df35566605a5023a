package site

import (
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/record"
)

func TestErrorPages(t *testing.T) {
	u := bareSite(t)
	for _, c := range []struct {
		name       string
		err        error
		status     int
		want       string
		retryAfter string
	}{
		{"rate limit", &login.RateLimitError{RetryAfter: 2500 * time.Millisecond}, 429, "Wait 3s", "3"},
		{"csrf", ErrCSRF, 403, "did not carry a valid security token", ""},
		{"not found", &record.Error{Kind: record.ErrNotFound}, 404, "does not exist", ""},
		{"unavailable", &record.Error{Kind: record.ErrUnavailable}, 503, "nothing was shown or saved", "1"},
		{"internal", fmt.Errorf("disk on fire at /var/secret"), 500, "could not complete this request", ""},
		{"not implemented", PageErr(501, "Emergency access is not available yet", "plain words", nil), 501, "plain words", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			u.Handle(func(http.ResponseWriter, *http.Request) error { return c.err }).ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
			body := rec.Body.String()
			if rec.Code != c.status || !strings.Contains(body, c.want) {
				t.Errorf("got %d, want %d with %q:\n%s", rec.Code, c.status, c.want, body)
			}
			if strings.Contains(body, "/var/secret") {
				t.Errorf("the internal cause reached the page")
			}
			if got := rec.Header().Get("Retry-After"); got != c.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, c.retryAfter)
			}
			if !strings.Contains(body, "Request id") {
				t.Errorf("no request id on the page")
			}
		})
	}
}

// TestTemplatesHaveNoInlineCode: the CSP would refuse inline script,
// style and event handlers; none may appear in a template.
func TestTemplatesHaveNoInlineCode(t *testing.T) {
	bad := regexp.MustCompile(`(?i)<style|\sstyle=|\son[a-z]+=|javascript:`)
	script := regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`)
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil || len(names) < 10 {
		t.Fatalf("templates: %v %d", err, len(names))
	}
	for _, n := range names {
		b, err := templateFS.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		if m := bad.Find(b); m != nil {
			t.Errorf("%s: inline code %q", n, m)
		}
		for _, m := range script.FindAllSubmatch(b, -1) {
			if !strings.Contains(string(m[1]), "src=") || strings.TrimSpace(string(m[2])) != "" {
				t.Errorf("%s: inline script %q", n, m[0])
			}
		}
	}
}

// TestAdminPagesParse: every console template parses with the layout (a
// parse error would leave the server without a web UI at all).
func TestAdminPagesParse(t *testing.T) {
	pages, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"admin", "admin-users", "admin-invite", "admin-user", "admin-requests", "admin-reset-mfa", "admin-reviews", "admin-log", "admin-audit", "admin-audit-event", "admin-policy", "admin-keys", "admin-clients"} {
		if pages[n] == nil {
			t.Errorf("page %s missing", n)
		}
	}
}

// TestAdminRoleMenus: the console's menus follow roles, and a session
// without a verified second factor gets none of them.
func TestAdminRoleMenus(t *testing.T) {
	for _, c := range []struct {
		name                                string
		roles                               []string
		mfa                                 bool
		console, secAdmin, privacy, auditor bool
	}{
		{"security admin", []string{"security-admin"}, true, true, true, false, false},
		{"privacy officer", []string{"privacy-officer"}, true, true, false, true, false},
		{"auditor", []string{"auditor"}, true, true, false, false, true},
		{"physician", []string{"physician"}, true, false, false, false, false},
		{"admin without second factor", []string{"security-admin"}, false, false, false, false, false},
		{"system", []string{"system"}, true, false, false, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := &Viewer{P: authn.Principal{Roles: c.roles, MFA: c.mfa}}
			if v.Console() != c.console || v.SecurityAdmin() != c.secAdmin || v.PrivacyOfficer() != c.privacy || v.Auditor() != c.auditor {
				t.Errorf("console %t admin %t privacy %t auditor %t", v.Console(), v.SecurityAdmin(), v.PrivacyOfficer(), v.Auditor())
			}
		})
	}
}

// bareSite is a Site with templates and a logger only: enough to render.
func bareSite(t *testing.T) *Site {
	t.Helper()
	s, err := New(Options{IdleTimeout: 15 * time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
