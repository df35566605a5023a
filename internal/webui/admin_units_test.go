package webui

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/identity"
)

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
			v := &viewer{P: authn.Principal{Roles: c.roles, MFA: c.mfa}}
			if v.Console() != c.console || v.SecurityAdmin() != c.secAdmin || v.PrivacyOfficer() != c.privacy || v.Auditor() != c.auditor {
				t.Errorf("console %t admin %t privacy %t auditor %t", v.Console(), v.SecurityAdmin(), v.PrivacyOfficer(), v.Auditor())
			}
		})
	}
}

// TestAdminFormRoles: role checkboxes parse to roles; unknown roles and
// the system role are refused without echoing the value.
func TestAdminFormRoles(t *testing.T) {
	for _, c := range []struct {
		name    string
		form    url.Values
		want    string
		wantErr bool
	}{
		{"none", url.Values{}, "", false},
		{"two", url.Values{"role": {"nurse", "auditor"}}, "nurse,auditor", false},
		{"unknown", url.Values{"role": {"<script>"}}, "", true},
		{"system", url.Values{"role": {"system"}}, "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(c.form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if err := r.ParseForm(); err != nil {
				t.Fatal(err)
			}
			roles, _, err := parseFormRoles(r)
			if (err != nil) != c.wantErr {
				t.Fatalf("error %v", err)
			}
			if err != nil {
				msg, ok := formMessage(err)
				if !ok || strings.Contains(msg, "<script>") || !errors.Is(err, identity.ErrInvalid) {
					t.Errorf("message %q %t", msg, ok)
				}
				return
			}
			if got := identity.FormatRoles(roles); got != c.want {
				t.Errorf("roles %q, want %q", got, c.want)
			}
		})
	}
}

// fakeDir is a directory of n accounts named u00000, u00001...
type fakeDir struct {
	identity.Directory
	users []identity.User
}

func (d fakeDir) List(_ context.Context, after string, limit int) ([]identity.User, error) {
	var out []identity.User
	for _, x := range d.users {
		if x.Username > after && len(out) < limit {
			out = append(out, x)
		}
	}
	return out, nil
}

// TestFindUsers: pages of userPage, a cursor only when more may follow,
// matching by any part of the username or display name, any case.
func TestFindUsers(t *testing.T) {
	var d fakeDir
	for i := range 120 {
		name := fmt.Sprintf("u%05d", i)
		disp := ""
		if i%40 == 7 {
			disp = "Nurse Ratched"
		}
		d.users = append(d.users, identity.User{ID: name, Username: name, DisplayName: disp})
	}
	for _, c := range []struct {
		name, q, after string
		n              int
		next           string
	}{
		{"first page", "", "", userPage, "u00049"},
		{"last page", "", "u00099", 20, ""},
		{"by display name", "RATCHED", "", 3, ""},
		{"no match", "nobody", "", 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := findUsers(t.Context(), d, c.q, c.after)
			if err != nil {
				t.Fatal(err)
			}
			if len(v.Users) != c.n || v.Next != c.next {
				t.Errorf("%d users, next %q; want %d, %q", len(v.Users), v.Next, c.n, c.next)
			}
		})
	}
}
