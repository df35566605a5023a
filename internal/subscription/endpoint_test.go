package subscription

import (
	"errors"
	"net"
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
		// Pentest finding 9: special-purpose ranges were accepted.
		{"TEST-NET-1", def, "https://192.0.2.2:9443/x", false},
		{"TEST-NET-1 even with private allowed", priv, "https://192.0.2.2/", false},
		{"benchmarking 198.18/15", def, "https://198.19.1.1/", false},
		{"TEST-NET-3", def, "https://203.0.113.9/", false},
		{"reserved 240/4", def, "https://250.1.1.1/", false},
		{"ipv6 documentation", def, "https://[2001:db8::1]/", false},
		{"ipv6 unique-local", def, "https://[fd12::1]/", false},
		{"NAT64 to loopback", def, "https://[64:ff9b::7f00:1]/", false},
		{"NAT64 to a public address", def, "https://[64:ff9b::808:808]/", true},
		{"public ipv4", def, "https://8.8.8.8/", true},
		{"public ipv6", def, "https://[2606:4700::1111]/", true},
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
	// This host's own addresses reach what listens on all interfaces,
	// as loopback does: refused without the loopback flag.
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, ia := range addrs {
		pfx, err := netip.ParsePrefix(ia.String())
		if err != nil {
			continue
		}
		if err := def.CheckAddr(pfx.Addr()); err == nil {
			t.Errorf("this host's address %s accepted", pfx.Addr())
		}
		if err := loop.CheckAddr(pfx.Addr()); err != nil && !pfx.Addr().IsLinkLocalUnicast() {
			t.Errorf("this host's address %s refused with the loopback flag: %v", pfx.Addr(), err)
		}
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
