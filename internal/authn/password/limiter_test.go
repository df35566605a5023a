package password

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestAddressLimiterAllowsThenBlocks(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)}
	l := NewAddressLimiter(AddressLimits{Now: clk.Now})
	a := netip.MustParseAddr("203.0.113.7")
	for i := range DefaultAddressBurst {
		if ok, _ := l.Allow(a); !ok {
			t.Fatalf("attempt %d refused within the burst", i+1)
		}
	}
	ok, wait := l.Allow(a)
	if ok || wait != 6*time.Second {
		t.Fatalf("after the burst: Allow = %v, %v; want false, 6s (10/min)", ok, wait)
	}
	// Refused attempts do not use tokens: hammering does not push the
	// next allowed attempt further away.
	for range 100 {
		l.Allow(a)
	}
	if _, wait := l.Allow(a); wait != 6*time.Second {
		t.Fatalf("retry after %v after hammering; want 6s", wait)
	}
	// Other addresses are independent.
	if ok, _ := l.Allow(netip.MustParseAddr("203.0.113.8")); !ok {
		t.Fatal("a different address is refused")
	}
	clk.Advance(6 * time.Second)
	if ok, _ := l.Allow(a); !ok {
		t.Fatal("refused after the refill time")
	}
	if ok, _ := l.Allow(a); ok {
		t.Fatal("a second attempt allowed on one refilled token")
	}
}

// TestInvalidAddressSharesBucket: a bad proxy header (an invalid
// address) shares one bucket: fails closed.
func TestInvalidAddressSharesBucket(t *testing.T) {
	// A bad proxy header (invalid address) shares one bucket: fails closed.
	l := NewAddressLimiter(AddressLimits{Burst: 1})
	l.Allow(netip.Addr{})
	if ok, _ := l.Allow(netip.Addr{}); ok {
		t.Fatal("invalid addresses do not share a bucket")
	}
}

func TestAddressLimiterMemoryCap(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	const max = 1000
	l := NewAddressLimiter(AddressLimits{MaxAddresses: max, Burst: 1, Now: clk.Now})
	hot := netip.MustParseAddr("192.0.2.1")
	l.Allow(hot) // uses its only token
	for i := range 100_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if ok, _ := l.Allow(a); !ok {
			t.Fatalf("a new address (%d) is refused", i)
		}
		if i%100 == 0 {
			// The hot address keeps trying; being recent, it is not
			// evicted, so its limit holds through the flood.
			if ok, _ := l.Allow(hot); ok {
				t.Fatal("the hot address was forgotten and allowed again")
			}
		}
		if n := l.Len(); n > max {
			t.Fatalf("%d entries; cap is %d", n, max)
		}
	}
	if n := l.Len(); n != max {
		t.Fatalf("%d entries; want %d", n, max)
	}
}

func TestAddressLimiterConcurrent(t *testing.T) {
	l := NewAddressLimiter(AddressLimits{MaxAddresses: 64, Burst: 5, Rate: 1e-9})
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := map[byte]int{}
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				b := byte(i % 32)
				if ok, _ := l.Allow(netip.AddrFrom4([4]byte{10, 0, 0, b})); ok {
					mu.Lock()
					allowed[b]++
					mu.Unlock()
				}
				_ = g
			}
		})
	}
	wg.Wait()
	for b, n := range allowed {
		if n != 5 {
			t.Errorf("address %d allowed %d times; want the burst of 5", b, n)
		}
	}
	if len(allowed) != 32 {
		t.Errorf("%d addresses allowed; want 32", len(allowed))
	}
}
