package merkle_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
)

// TestTwoIntegratorsRace runs two phivault processes' worth of stores
// (separate connection pools) on one PostgreSQL database: writers append
// on both while both integrators loop. Every record ends with exactly
// one leaf index, indexes run 0..n-1 without gap, an index once seen
// never moves, and the whole log verifies.
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
	seen := make(map[int64]int64) // seq -> leaf index, as first observed
	var seenMu sync.Mutex
	observe := func() {
		err := a.st.TLog().ScanLeaves(context.Background(), 0, 1<<62, func(l storage.LogLeaf) error {
			seenMu.Lock()
			defer seenMu.Unlock()
			if prev, ok := seen[l.Seq]; ok && prev != l.Index {
				t.Errorf("record %d moved from leaf %d to %d", l.Seq, prev, l.Index)
			}
			seen[l.Seq] = l.Index
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
	idx := make(map[int64]int64)
	err := b.st.TLog().ScanLeaves(t.Context(), 0, 1<<62, func(l storage.LogLeaf) error {
		if prev, dup := idx[l.Index]; dup {
			t.Errorf("leaf %d held by records %d and %d", l.Index, prev, l.Seq)
		}
		idx[l.Index] = l.Seq
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(idx) != total {
		t.Fatalf("%d leaves, want %d", len(idx), total)
	}
	for i := range int64(total) {
		if _, ok := idx[i]; !ok {
			t.Fatalf("leaf %d missing", i)
		}
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
