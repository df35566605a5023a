package subscription_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/subscription"
)

// TestFleetDeliversOnce: two phivault processes on one PostgreSQL
// database, both following the feed and delivering at once, send the
// handshake once and each change's notification once (a notification is
// leased by one process; delivery is at least once only across a crash,
// and every attempt carries the same X-Phivault-Notification-Id).
func TestFleetDeliversOnce(t *testing.T) {
	rcv := newReceiver(t)
	s := start(t, "postgres", rcv, 3)
	b, err := app.Open(t.Context(), s.App.Config, nil, app.WithSubscriptionOptions(func(o *subscription.Options) {
		o.TLS = rcv.ts.Client().Transport.(*http.Transport).TLSClientConfig
		o.BaseBackoff, o.MaxBackoff, o.Lease = time.Millisecond, 5*time.Millisecond, subscription.DeliveryTimeout+5*time.Second
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	procs := []*app.App{s.App, b}
	both := func(what string, cond func() bool) {
		t.Helper()
		for range 150 {
			var wg sync.WaitGroup
			errs := make([]error, len(procs))
			for i, p := range procs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = p.Subscriptions().Round(t.Context())
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatalf("round: %v", err)
				}
			}
			if cond() {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("timed out waiting for %s", what)
	}
	pid := patient(t, s)
	sid := s.Create(t, sub("Observation?patient=Patient/"+pid, rcv.ts.URL+"/f", ""))
	both("active", func() bool { st, _ := status(t, s, sid); return st == "active" })
	const n = 12
	for range n {
		s.Create(t, observation(pid, ""))
	}
	both("deliveries", func() bool { return len(rcv.matching("/f")) >= n+1 })
	for range 3 {
		both("nothing more", func() bool { return true })
	}
	hits := rcv.matching("/f")
	ids := map[string]int{}
	for _, h := range hits {
		ids[h.Header.Get("X-Phivault-Notification-Id")]++
	}
	if len(hits) != n+1 || len(ids) != n+1 {
		t.Fatalf("%d requests with %d distinct notification ids, want %d each (handshake and %d changes): %v", len(hits), len(ids), n+1, n, fmt.Sprint(ids))
	}
	_ = apitest.Drivers
}
