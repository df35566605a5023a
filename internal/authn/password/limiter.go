package password

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/phivault/phivault/internal/addrlimit"
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
	buckets *addrlimit.Buckets
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
	return &AddressLimiter{cfg: cfg, buckets: addrlimit.NewBuckets(cfg.Rate, cfg.Burst, cfg.MaxAddresses)}
}

// Allow records an attempt from addr and reports whether it may proceed;
// when not, retryAfter is when the next attempt would be allowed (for a
// Retry-After header). Check it before looking the account up, and
// answer a refusal the same way for every account. An invalid addr is
// one shared bucket, so a broken proxy header fails closed.
func (l *AddressLimiter) Allow(addr netip.Addr) (ok bool, retryAfter time.Duration) {
	key := addrlimit.Key(addr)
	now := l.cfg.Now()

	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.buckets.Get(key)
	r := lim.ReserveN(now, 1)
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
	return l.buckets.Len()
}
