package attempt

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/phivault/phivault/internal/audit"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type recorder struct {
	mu   sync.Mutex
	evs  []audit.Event
	fail bool
}

func (r *recorder) Record(_ context.Context, ev audit.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("injected: audit log down")
	}
	r.evs = append(r.evs, ev)
	return nil
}

var a1, a2 = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")

// TestLimiter: each address has its burst; beyond it Take refuses and
// Blocked says so without taking; refusals are reported as one event
// per address, kept when the report fails, and tokens come back with
// time.
func TestLimiter(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	rec := &recorder{}
	l := New(Options{Rate: rate.Limit(1), Burst: 3, Now: c.now, Recorder: rec})
	for i := range 3 {
		if ok, _ := l.Take(a1); !ok {
			t.Fatalf("take %d within the burst refused", i)
		}
	}
	if blocked, wait := l.Blocked(a1); !blocked || wait <= 0 {
		t.Fatalf("Blocked after the burst: %v %v, want true with a wait", blocked, wait)
	}
	if ok, _ := l.Take(a1); ok {
		t.Fatal("a take beyond the burst was allowed")
	}
	if blocked, _ := l.Blocked(a2); blocked {
		t.Fatal("another address is blocked")
	}
	for range 7 {
		l.Refused(a1)
	}
	l.Refused(a2)
	rec.fail = true
	if err := l.Flush(t.Context()); err == nil || l.Pending() != 8 {
		t.Fatalf("a failed report: err %v, pending %d, want an error and the 8 refusals kept", err, l.Pending())
	}
	rec.fail = false
	if err := l.Flush(t.Context()); err != nil || l.Pending() != 0 {
		t.Fatalf("report: %v, pending %d", err, l.Pending())
	}
	want := map[string]string{"192.0.2.1": "count=7", "2001:db8::/64": "count=1"}
	if len(rec.evs) != 2 {
		t.Fatalf("got %d events, want 2: %+v", len(rec.evs), rec.evs)
	}
	for _, ev := range rec.evs {
		if ev.Action != audit.ActionRateLimit || ev.Outcome != audit.OutcomeDenied || ev.Status != 429 ||
			!slices.Contains(ev.Policies, want[ev.Agent.Address]) {
			t.Fatalf("event %+v", ev)
		}
	}
	c.t = c.t.Add(2 * time.Second)
	if ok, _ := l.Take(a1); !ok {
		t.Fatal("no token back after 2 s at 1/s")
	}
}

// TestLimiterGlobal: all addresses together get the global burst.
func TestLimiterGlobal(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l := New(Options{Burst: 10, GlobalRate: 1, GlobalBurst: 5, Now: c.now})
	n := 0
	for i := range 20 {
		if ok, _ := l.Take(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})); ok {
			n++
		}
	}
	if n != 5 {
		t.Fatalf("%d takes from 20 addresses, want the global burst of 5", n)
	}
}

// TestLimiterBounded: memory stays bounded with more sources than
// MaxAddresses; the refusals of the extra ones share one counter.
func TestLimiterBounded(t *testing.T) {
	rec := &recorder{}
	l := New(Options{MaxAddresses: 16, Recorder: rec})
	for i := range 1000 {
		a := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		l.Take(a)
		l.Refused(a)
	}
	if l.buckets.Len() > 16 || len(l.counts) > 16 {
		t.Fatalf("%d buckets and %d counters, want at most 16 each", l.buckets.Len(), len(l.counts))
	}
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(rec.evs) != 17 || !slices.ContainsFunc(rec.evs, func(ev audit.Event) bool {
		return ev.Agent.Address == "" && slices.Contains(ev.Policies, "count=984")
	}) {
		t.Fatalf("got %d events, want 16 and one shared with count=984", len(rec.evs))
	}
}
