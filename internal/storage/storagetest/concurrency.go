package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/phivault/phivault/internal/storage"
)

// rmw increments typ/id by one version with a read-modify-write in one
// Update. Update must absorb lost races itself (row locks, or a retry of
// fn after a concurrent create), so ErrConflict is a failure; only
// ErrUnavailable (retries exhausted under contention) is retried here,
// as an HTTP client would on 503.
func rmw(ctx context.Context, s storage.Store, typ, id string, tick int) error {
	for attempt := 1; ; attempt++ {
		err := s.Update(ctx, func(tx storage.Tx) error {
			cur, err := tx.Current(ctx, typ, id)
			next := int64(1)
			switch {
			case err == nil:
				next = cur.Version + 1
			case !errors.Is(err, storage.ErrNotFound):
				return err
			}
			v := ver(typ, id, next, "org", at(tick))
			return tx.Put(ctx, v, []storage.IndexRow{tok("n", fmt.Sprint(next))})
		})
		if errors.Is(err, storage.ErrUnavailable) && attempt < 100 {
			continue
		}
		return err
	}
}

// ConcurrentRMW runs workers×perWorker read-modify-write increments of
// typ/id spread over the given stores and checks that no write was lost
// and versions are contiguous. Exported for multi-store driver tests.
func ConcurrentRMW(t *testing.T, stores []storage.Store, typ, id string, workers, perWorker int) {
	t.Helper()
	ctx := t.Context()
	errs := make(chan error, workers)
	for w := range workers {
		s := stores[w%len(stores)]
		go func() {
			for i := range perWorker {
				if err := rmw(ctx, s, typ, id, w*1000+i); err != nil {
					errs <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	CheckContiguous(t, stores[0], typ, id, int64(workers*perWorker))
}

// CheckContiguous asserts that typ/id has exactly versions 1..n and that
// the current version and its index row are version n.
func CheckContiguous(t *testing.T, s storage.Store, typ, id string, n int64) {
	t.Helper()
	ctx := t.Context()
	cur, err := s.Current(ctx, typ, id)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Version != n {
		t.Errorf("%s/%s: final version %d, want %d (successful writes)", typ, id, cur.Version, n)
	}
	vs, err := s.History(ctx, storage.HistoryQuery{Type: typ, ID: id, Count: int(n) + 10})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[int64]bool)
	for _, v := range vs {
		if seen[v.Version] {
			t.Errorf("%s/%s: duplicate version %d", typ, id, v.Version)
		}
		seen[v.Version] = true
	}
	for v := int64(1); v <= n; v++ {
		if !seen[v] {
			t.Errorf("%s/%s: version %d missing", typ, id, v)
		}
	}
	if int64(len(vs)) != n {
		t.Errorf("%s/%s: %d versions stored, want %d", typ, id, len(vs), n)
	}
	res := search(t, s, storage.Query{Type: typ, Count: 10, Clauses: []storage.Clause{
		{Any: []storage.Cond{{Kind: storage.CondHash, Param: "n", Hashes: [][]byte{hash(fmt.Sprint(n))}}}},
		{Any: []storage.Cond{{Kind: storage.CondID, IDs: []string{id}}}},
	}})
	if got := ids(res.Versions); !slices.Equal(got, []string{id}) {
		t.Errorf("%s/%s: index not at version %d: %v", typ, id, n, got)
	}
}

func testConcurrentUpdates(t *testing.T, s storage.Store) {
	ConcurrentRMW(t, []storage.Store{s}, "Observation", "hot", 8, 25)
}

func testConcurrentCreates(t *testing.T, s storage.Store) {
	// Many ids, each created by 8 racing goroutines: every goroutine's
	// write lands (as version 1..8), none is lost or duplicated.
	for i := range 5 {
		ConcurrentRMW(t, []storage.Store{s}, "Patient", fmt.Sprintf("new%d", i), 8, 1)
	}
}
