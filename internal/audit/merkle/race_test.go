package merkle_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
)

// TestTwoIntegratorsRace runs two phivault processes' worth of stores
// (separate connection pools) on one PostgreSQL database: writers append
// on both while both integrators loop. Every record ends with exactly
// one leaf index, indexes run 0..n-1 without gap, an event once seen at
// an index never moves, and the whole log verifies. Events are told
// apart by their request ids (unique per appended event).
func TestTwoIntegratorsRace(t *testing.T) {
	url := pgtest.NewDatabase(t)
	c := newCrypt(t)
	a, b := openPostgres(t, url), openPostgres(t, url)
	ins := [...]interface {
		IntegrateAll(context.Context) (int64, error)
	}{c.integrator(t, a.st), c.integrator(t, b.st)}

	const writers, batches, perBatch = 4, 25, 20
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for w := range writers {
		st := a.st
		if w%2 == 1 {
			st = b.st
		}
		wg.Go(func() {
			for i := range batches {
				base := (w*batches + i) * perBatch
				c.appendEvents(t, st, base, base+perBatch)
			}
		})
	}
	seen := make(map[string]int64) // request id -> leaf index, as first observed
	var seenMu sync.Mutex
	observe := func() {
		r := merkle.NewReader(a.st.TLog(), c.log)
		size, err := r.Size(context.Background())
		if err != nil {
			t.Error(err)
			return
		}
		err = r.ScanLeaves(context.Background(), 0, size, func(i int64, leaf []byte, _ bool) error {
			id := requestID(t, leaf)
			seenMu.Lock()
			defer seenMu.Unlock()
			if prev, ok := seen[id]; ok && prev != i {
				t.Errorf("event %s moved from leaf %d to %d", id, prev, i)
			}
			seen[id] = i
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
	var iwg sync.WaitGroup
	for _, in := range ins {
		iwg.Go(func() {
			for ctx.Err() == nil {
				if _, err := in.IntegrateAll(ctx); err != nil && ctx.Err() == nil {
					t.Errorf("integrate: %v", err)
					return
				}
				observe()
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	cancel()
	iwg.Wait()
	if _, err := ins[0].IntegrateAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	observe()

	const total = writers * batches * perBatch
	rb := merkle.NewReader(b.st.TLog(), c.log)
	size, err := rb.Size(t.Context())
	if err != nil || size != total {
		t.Fatalf("tree size %d (%v), want %d", size, err, total)
	}
	byEvent := make(map[string]int64)
	err = rb.ScanLeaves(t.Context(), 0, size, func(i int64, leaf []byte, _ bool) error {
		id := requestID(t, leaf)
		if prev, dup := byEvent[id]; dup {
			t.Errorf("event %s at leaves %d and %d", id, prev, i)
		}
		byEvent[id] = i
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(byEvent) != total {
		t.Fatalf("%d distinct events, want %d", len(byEvent), total)
	}
	if n, err := a.st.TLog().CountPending(t.Context()); err != nil || n != 0 {
		t.Fatalf("pending %d, %v", n, err)
	}
	rep, err := c.verify(t, a.st, c.signer.VerifierKey())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Leaves != total {
		t.Errorf("verified %d leaves, want %d", rep.Leaves, total)
	}
	t.Logf("%d leaves, %d checkpoints", rep.Leaves, rep.Checkpoints)
}

// TestVerifyWhileIntegrating: verification of a live log (appends and
// integrations running) reports no divergence.
func TestVerifyWhileIntegrating(t *testing.T) {
	drivers(t, func(t *testing.T, open func(testing.TB) *db) {
		c := newCrypt(t)
		d := open(t)
		in := c.integrator(t, d.st)
		c.appendEvents(t, d.st, 0, 500)
		if _, err := in.IntegrateAll(t.Context()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 500; ctx.Err() == nil; i += 20 {
				c.appendEvents(t, d.st, i, i+20)
				if _, err := in.IntegrateAll(ctx); err != nil && ctx.Err() == nil {
					t.Errorf("integrate: %v", err)
					return
				}
			}
		})
		for range 5 {
			if _, err := c.verify(t, d.st, c.signer.VerifierKey()); err != nil {
				t.Errorf("Verify of a live log: %v", err)
			}
		}
		cancel()
		wg.Wait()
	})
}

// requestID returns the request id of the event in leaf.
func requestID(t *testing.T, leaf []byte) string {
	_, b, err := audit.SplitLeaf(leaf)
	if err != nil {
		t.Fatal(err)
	}
	var ev audit.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return ev.RequestID
}
