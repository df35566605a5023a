package addrlimit

import (
	"net/netip"
	"testing"
)

// TestKey: IPv6 per /64, IPv4-mapped as IPv4, zones ignored, IPv4 per
// address, invalid addresses in one bucket.
func TestKey(t *testing.T) {
	tests := []struct {
		name   string
		a, b   string
		shared bool
	}{
		{"same IPv6 /64", "2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true},
		{"different IPv6 /64", "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"IPv4-mapped is IPv4", "::ffff:198.51.100.1", "198.51.100.1", true},
		{"IPv6 zone ignored", "fe80::1%eth0", "fe80::1%eth1", true},
		{"IPv4 per address", "198.51.100.1", "198.51.100.2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ka, kb := Key(netip.MustParseAddr(tt.a)), Key(netip.MustParseAddr(tt.b))
			if (ka == kb) != tt.shared {
				t.Fatalf("keys %v and %v; shared = %v, want %v", ka, kb, ka == kb, tt.shared)
			}
		})
	}
	if z1, z2 := Key(netip.Addr{}), Key(netip.Addr{}); z1 != z2 || z1.IsValid() {
		t.Fatal("invalid addresses do not share the zero bucket")
	}
}

// TestBucketsBounded: at most max sources are tracked; the least
// recently seen is forgotten, a seen one is kept.
func TestBucketsBounded(t *testing.T) {
	b := NewBuckets(1, 1, 3)
	k := func(i byte) netip.Prefix { return Key(netip.AddrFrom4([4]byte{192, 0, 2, i})) }
	first := b.Get(k(1))
	first.Allow() // empty it
	b.Get(k(2))
	b.Get(k(1)) // seen again: now the most recent
	b.Get(k(3))
	b.Get(k(4)) // forgets k(2), the least recently seen
	if b.Len() != 3 || len(b.entries) != 3 {
		t.Fatalf("list %d, map %d sources; want 3", b.Len(), len(b.entries))
	}
	if _, ok := b.Peek(k(2)); ok {
		t.Fatal("the least recently seen source was kept")
	}
	if l, ok := b.Peek(k(1)); !ok || l != first {
		t.Fatal("a recently seen source was forgotten")
	}
}
