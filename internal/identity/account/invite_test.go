package account_test

import (
	"net/url"
	"testing"

	"github.com/phivault/phivault/internal/identity/account"
)

// The invitation link names the page and carries the secret and the
// username in its fragment only (never sent to a server).
func TestInvitationLink(t *testing.T) {
	secret := account.EnrolmentPrefix + "AbC-_123"
	for _, base := range []string{"https://phivault.example", "https://phivault.example/", ""} {
		link := account.InvitationLink(base, "dr.o'neil", secret)
		u, err := url.Parse(link)
		if err != nil {
			t.Fatalf("InvitationLink(%q) = %q: %v", base, link, err)
		}
		if u.Path != account.EnrolmentPage || u.RawQuery != "" {
			t.Errorf("InvitationLink(%q) = %q: path %q, query %q", base, link, u.Path, u.RawQuery)
		}
		if base != "" && u.Host != "phivault.example" {
			t.Errorf("InvitationLink(%q) = %q: host %q", base, link, u.Host)
		}
		frag, err := url.ParseQuery(u.Fragment)
		if err != nil || frag.Get("token") != secret || frag.Get("username") != "dr.o'neil" {
			t.Errorf("InvitationLink(%q) fragment %q", base, u.Fragment)
		}
	}
}
