package console

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/identity"
)

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
