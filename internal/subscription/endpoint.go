package subscription

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
)

// ErrEndpoint is the cause of a refused rest-hook endpoint: not https,
// or an address the server must not reach (server-side request forgery).
var ErrEndpoint = errors.New("subscription: endpoint refused")

// EndpointPolicy says which rest-hook endpoints the server calls. The
// zero value is the safe default: https only, public addresses only.
type EndpointPolicy struct {
	// AllowLoopback allows endpoints on a loopback address
	// (127.0.0.0/8, ::1, localhost), over http too: local receivers and
	// tests.
	AllowLoopback bool
	// AllowPrivate allows private, loopback (https), link-local,
	// unique-local and shared addresses (an integration engine on the
	// hospital network). Cloud metadata addresses stay refused.
	AllowPrivate bool
}

// metadata are the cloud instance-metadata addresses: never reachable,
// whatever the policy (they hand out credentials).
var metadata = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("169.254.170.2"),
	netip.MustParseAddr("fd00:ec2::254"), netip.MustParseAddr("100.100.100.200"),
}

// sharedSpace is RFC 6598 carrier-grade NAT space (100.64.0.0/10).
var sharedSpace = netip.MustParsePrefix("100.64.0.0/10")

// CheckURL checks an endpoint's form: https, or http to a loopback
// literal or "localhost" when AllowLoopback. Addresses are checked
// again, as dialled, by the client's dialer (a name can resolve
// anywhere, and differently at each call).
func (p EndpointPolicy) CheckURL(u *url.URL) error {
	switch u.Scheme {
	case "https":
	case "http":
		if !p.AllowLoopback || !loopbackHost(u.Hostname()) {
			return fmt.Errorf("%w: the endpoint must use https", ErrEndpoint)
		}
	default:
		return fmt.Errorf("%w: the endpoint must use https", ErrEndpoint)
	}
	if u.Host == "" || u.User != nil {
		return fmt.Errorf("%w: the endpoint must be an absolute URL without credentials", ErrEndpoint)
	}
	if a, err := netip.ParseAddr(u.Hostname()); err == nil {
		return p.CheckAddr(a)
	}
	return nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}

// CheckAddr decides whether the server may connect to a. Beyond the
// policy's loopback and private ranges, every IANA special-purpose
// range (documentation, benchmarking, 6to4 relays, reserved, NAT64 to a
// refused IPv4 address...: code.dny.dev/ssrf's tables) is refused, and
// so is any address of this host's own interfaces (they reach services
// bound to all addresses, as loopback does).
func (p EndpointPolicy) CheckAddr(a netip.Addr) error {
	a = a.Unmap()
	for _, m := range metadata {
		if a == m {
			return fmt.Errorf("%w: the endpoint resolves to a cloud metadata address", ErrEndpoint)
		}
	}
	if a.Is6() && ssrf.IPv6NAT64Prefix.Contains(a) {
		b := a.As16()
		return p.CheckAddr(netip.AddrFrom4([4]byte(b[12:])))
	}
	switch {
	case !a.IsValid(), a.IsUnspecified(), a.IsMulticast(), a.IsInterfaceLocalMulticast(), a.IsLinkLocalMulticast():
		return fmt.Errorf("%w: the endpoint resolves to an address that is not unicast", ErrEndpoint)
	case a.IsLoopback() || localAddr(a):
		if p.AllowLoopback {
			return nil
		}
		return fmt.Errorf("%w: the endpoint resolves to a loopback address or one of this host's", ErrEndpoint)
	case a.IsPrivate(), a.IsLinkLocalUnicast(), sharedSpace.Contains(a):
		if p.AllowPrivate {
			return nil
		}
		return fmt.Errorf("%w: the endpoint resolves to a private or link-local address", ErrEndpoint)
	case !a.IsGlobalUnicast(), specialPurpose(a):
		return fmt.Errorf("%w: the endpoint resolves to a reserved address", ErrEndpoint)
	}
	return nil
}

// specialPurpose reports whether a is in an IANA special-purpose range
// (the private and loopback ones are decided before).
func specialPurpose(a netip.Addr) bool {
	if a.Is4() {
		for _, pfx := range ssrf.IPv4DeniedPrefixes {
			if pfx.Contains(a) {
				return true
			}
		}
		return false
	}
	if !ssrf.IPv6GlobalUnicast.Contains(a) {
		return true
	}
	for _, pfx := range ssrf.IPv6DeniedPrefixes {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// localAddr reports whether a is assigned to one of this host's
// interfaces (an unreadable interface list counts as yes: fail closed).
func localAddr(a netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true
	}
	for _, ia := range addrs {
		if pfx, err := netip.ParsePrefix(ia.String()); err == nil && pfx.Addr().Unmap() == a {
			return true
		}
	}
	return false
}

// control is the dialer's Control: it runs after name resolution, with
// the very address about to be connected, before the connection is
// made; a refusal here means no packet leaves for that address.
func (p EndpointPolicy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparsable dial address", ErrEndpoint)
	}
	return p.CheckAddr(ap.Addr())
}

// Delivery limits.
const (
	// DeliveryTimeout bounds one delivery attempt, connection to
	// response (a slow receiver must not hold a worker).
	DeliveryTimeout = 10 * time.Second
	// maxResponse bounds what is read of a receiver's response (then
	// discarded): enough to reuse the connection, not a download.
	maxResponse = 64 << 10
)

// NewClient returns the HTTP client rest-hook deliveries use: every
// connection's address checked by p as dialled, no proxy (a proxy
// would dial for us, unchecked), no redirects (a redirect could point
// anywhere), TLS 1.2 or later with verified certificates (roots: the
// system's, or roots when set, for tests), and DeliveryTimeout.
func (p EndpointPolicy) NewClient(roots *tls.Config) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: p.control}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if roots != nil {
		tc = roots.Clone()
		if tc.MinVersion < tls.VersionTLS12 {
			tc.MinVersion = tls.VersionTLS12
		}
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSClientConfig:       tc,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: DeliveryTimeout,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   DeliveryTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
