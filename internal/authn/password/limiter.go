package password

import (
	"container/list"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults for [AddressLimits], with their reasons.
const (
	// DefaultAddressRate is 10 login attempts a minute per address: more
	// than a person mistyping ever needs, and 14,400 a day is far too few
	// for credential stuffing from one address to pay.
	DefaultAddressRate = rate.Limit(10.0 / 60)
	// DefaultAddressBurst is 20: a clinic behind one NAT address can have
	// a shift log in at once.
	DefaultAddressBurst = 20
	// DefaultMaxAddresses is 10,000 tracked addresses, ≈ 2 MB at about
	// 200 bytes each. When full the least recently seen is forgotten; it
	// is usually idle, and an idle bucket is full, so forgetting it
	// changes nothing.
	DefaultMaxAddresses = 10_000
	// ipv6Prefix: IPv6 addresses are limited per /64, the smallest block
	// a site is normally given (RFC 6177); per address, one host could
	// rotate through 2^64 of them.
	ipv6Prefix = 64
)

// AddressLimits configures an [AddressLimiter]. The zero value means the
// defaults.
type AddressLimits struct {
	Rate         rate.Limit       // attempts per second; zero means DefaultAddressRate
	Burst        int              // zero means DefaultAddressBurst
	MaxAddresses int              // zero means DefaultMaxAddresses
	Now          func() time.Time // zero means time.Now
}

// AddressLimiter limits login attempts per source address (IPv4 address
// or IPv6 /64) with a token bucket each. Its memory is bounded by
// MaxAddresses entries whatever the number of distinct sources: when full
// it forgets the least recently seen one. An attacker with more addresses
// than that gets a fresh bucket per address; per-account [Lockout] is the
// control that holds then.
//
// An AddressLimiter is safe for concurrent use; its zero value is not
// usable: call [NewAddressLimiter].
type AddressLimiter struct {
	cfg AddressLimits

	mu      sync.Mutex
	entries map[netip.Prefix]*list.Element // of *addrEntry
	lru     list.List                      // front is most recently seen
}

type addrEntry struct {
	key netip.Prefix
	lim *rate.Limiter
}

// NewAddressLimiter returns a limiter for cfg, filling in defaults.
func NewAddressLimiter(cfg AddressLimits) *AddressLimiter {
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultAddressRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultAddressBurst
	}
	if cfg.MaxAddresses <= 0 {
		cfg.MaxAddresses = DefaultMaxAddresses
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &AddressLimiter{cfg: cfg, entries: make(map[netip.Prefix]*list.Element)}
}

// Allow records an attempt from addr and reports whether it may proceed;
// when not, retryAfter is when the next attempt would be allowed (for a
// Retry-After header). Check it before looking the account up, and
// answer a refusal the same way for every account. An invalid addr is
// one shared bucket, so a broken proxy header fails closed.
func (l *AddressLimiter) Allow(addr netip.Addr) (ok bool, retryAfter time.Duration) {
	key := addressKey(addr)
	now := l.cfg.Now()

	l.mu.Lock()
	defer l.mu.Unlock()
	var e *addrEntry
	if el, found := l.entries[key]; found {
		l.lru.MoveToFront(el)
		e = el.Value.(*addrEntry)
	} else {
		if l.lru.Len() >= l.cfg.MaxAddresses {
			oldest := l.lru.Back()
			l.lru.Remove(oldest)
			delete(l.entries, oldest.Value.(*addrEntry).key)
		}
		e = &addrEntry{key: key, lim: rate.NewLimiter(l.cfg.Rate, l.cfg.Burst)}
		l.entries[key] = l.lru.PushFront(e)
	}
	r := e.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // a refused attempt does not use up a token
		return false, d
	}
	return true, 0
}

// Len returns the number of addresses tracked, at most MaxAddresses.
func (l *AddressLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// addressKey maps addr to its bucket: the IPv4 address (IPv4-mapped IPv6
// unmapped first), the IPv6 /64, or the zero prefix for an invalid addr.
func addressKey(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap().WithZone("")
	switch {
	case addr.Is4():
		return netip.PrefixFrom(addr, 32)
	case addr.Is6():
		p, _ := addr.Prefix(ipv6Prefix)
		return p
	}
	return netip.Prefix{}
}
