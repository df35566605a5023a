package subscription

import (
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"testing"
)

func TestEndpointPolicy(t *testing.T) {
	def := EndpointPolicy{}
	loop := EndpointPolicy{AllowLoopback: true}
	priv := EndpointPolicy{AllowPrivate: true}
	cases := []struct {
		name string
		p    EndpointPolicy
		url  string
		ok   bool
	}{
		{"public https", def, "https://example.org/hook", true},
		{"http refused", def, "http://example.org/hook", false},
		{"loopback refused", def, "https://127.0.0.1/hook", false},
		{"loopback http refused without flag", def, "http://127.0.0.1:8080/hook", false},
		{"loopback http with flag", loop, "http://127.0.0.1:8080/hook", true},
		{"http to a public host even with the loopback flag", loop, "http://example.org/hook", false},
		{"metadata", def, "https://169.254.169.254/latest/meta-data", false},
		{"metadata even with private allowed", priv, "https://169.254.169.254/", false},
		{"private 10/8", def, "https://10.1.2.3/hook", false},
		{"private 192.168", def, "https://192.168.0.1/hook", false},
		{"private allowed", priv, "https://10.1.2.3/hook", true},
		{"link-local", def, "https://169.254.1.1/", false},
		{"ipv6 loopback", def, "https://[::1]/", false},
		{"ipv4-mapped private", def, "https://[::ffff:10.0.0.1]/", false},
		{"unspecified", def, "https://0.0.0.0/", false},
		{"credentials", def, "https://u:p@example.org/", false},
	}
	for _, c := range cases {
		u, err := url.Parse(c.url)
		if err != nil {
			t.Fatal(err)
		}
		err = c.p.CheckURL(u)
		if (err == nil) != c.ok {
			t.Errorf("%s: %s: %v", c.name, c.url, err)
		}
		if err != nil && !errors.Is(err, ErrEndpoint) {
			t.Errorf("%s: error %v is not ErrEndpoint", c.name, err)
		}
	}
	if err := def.CheckAddr(netip.MustParseAddr("100.64.0.1")); err == nil {
		t.Error("shared address space accepted")
	}
}

// TestDialerRefusesAsDialled: a name is checked after resolution, with
// the address about to be dialled: "localhost" resolves to loopback and
// is refused without the flag, and a literal private or metadata address
// is refused before any connection is made (the dialer's Control runs
// before connect, so no packet leaves for it).
func TestDialerRefusesAsDialled(t *testing.T) {
	c := EndpointPolicy{}.NewClient(nil)
	for _, u := range []string{"https://localhost:1/", "https://127.0.0.1:1/", "https://10.255.255.1/", "https://169.254.169.254/"} {
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: dialled", u)
		}
		if !errors.Is(err, ErrEndpoint) {
			t.Errorf("%s: %v, want ErrEndpoint", u, err)
		}
	}
	if c.CheckRedirect(&http.Request{}, nil) != http.ErrUseLastResponse {
		t.Error("redirects are followed")
	}
}
