// Package addrlimit keeps one token bucket per client address, for the
// limits that count what a source sends: password attempts, the events
// of unauthenticated requests, connections. Sources are IPv4 addresses
// or IPv6 /64s (RFC 6177: the smallest block one host may hold);
// an address that cannot be parsed shares one bucket, so a broken
// proxy header fails closed.
package addrlimit

import (
	"container/list"
	"net/netip"

	"golang.org/x/time/rate"
)

// IPv6Prefix is the length of the IPv6 prefix that counts as one source.
const IPv6Prefix = 64

// Key is addr's source: the IPv4 address (IPv4-mapped IPv6 unmapped
// first), the IPv6 /64, or the zero prefix for an invalid addr.
func Key(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap().WithZone("")
	switch {
	case addr.Is4():
		return netip.PrefixFrom(addr, 32)
	case addr.Is6():
		p, _ := addr.Prefix(IPv6Prefix)
		return p
	}
	return netip.Prefix{}
}

// Buckets is a token bucket per source, the least recently seen
// forgotten beyond a maximum, so memory stays bounded under a flood of
// sources. It is not safe for concurrent use: its owner holds a lock.
type Buckets struct {
	r       rate.Limit
	burst   int
	max     int
	entries map[netip.Prefix]*list.Element // of *entry
	lru     list.List                      // front: most recently seen
}

type entry struct {
	key netip.Prefix
	lim *rate.Limiter
}

// NewBuckets returns buckets of rate r and burst for at most max sources.
func NewBuckets(r rate.Limit, burst, max int) *Buckets {
	return &Buckets{r: r, burst: burst, max: max, entries: make(map[netip.Prefix]*list.Element)}
}

// Get returns key's bucket, creating it (full) when it is new, and marks
// it most recently seen.
func (b *Buckets) Get(key netip.Prefix) *rate.Limiter {
	if el, ok := b.entries[key]; ok {
		b.lru.MoveToFront(el)
		return el.Value.(*entry).lim
	}
	if b.lru.Len() >= b.max {
		oldest := b.lru.Back()
		b.lru.Remove(oldest)
		delete(b.entries, oldest.Value.(*entry).key)
	}
	e := &entry{key: key, lim: rate.NewLimiter(b.r, b.burst)}
	b.entries[key] = b.lru.PushFront(e)
	return e.lim
}

// Peek returns key's bucket if it exists, without creating it or
// marking it seen.
func (b *Buckets) Peek(key netip.Prefix) (*rate.Limiter, bool) {
	el, ok := b.entries[key]
	if !ok {
		return nil, false
	}
	return el.Value.(*entry).lim, true
}

// Len returns the number of sources tracked, at most the maximum.
func (b *Buckets) Len() int { return b.lru.Len() }
