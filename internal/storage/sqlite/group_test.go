package sqlite_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// TestGroupCommitIsolatesFailures runs many concurrent Updates, which the
// SQLite store commits in groups: an Update whose fn fails must leave no
// trace, and every other Update must be committed.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s := open(t)
	errBoom := errors.New("boom")
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Update(t.Context(), func(tx storage.Tx) error {
				v := storage.Version{Type: "Patient", ID: fmt.Sprintf("p%03d", i), Version: 1, Owner: "org",
					Ciphertext: []byte{1, 2, 3}, LastUpdated: time.Unix(1700000000, 0).UTC()}
				if err := tx.Put(t.Context(), v, []storage.IndexRow{{Param: "name", Hash: []byte{byte(i)}}}); err != nil {
					return err
				}
				if i%5 == 0 {
					return errBoom
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		_, cerr := s.Current(t.Context(), "Patient", fmt.Sprintf("p%03d", i))
		switch {
		case i%5 == 0:
			if !errors.Is(err, errBoom) {
				t.Errorf("update %d: %v, want its own error", i, err)
			}
			if !errors.Is(cerr, storage.ErrNotFound) {
				t.Errorf("update %d failed but its write is visible: %v", i, cerr)
			}
		default:
			if err != nil {
				t.Errorf("update %d: %v", i, err)
			}
			if cerr != nil {
				t.Errorf("update %d committed but not readable: %v", i, cerr)
			}
		}
	}
	r, err := s.Search(t.Context(), storage.Query{Type: "Patient", Total: true})
	if err != nil || r.Total != n-n/5 {
		t.Errorf("total %d (%v), want %d", r.Total, err, n-n/5)
	}
}
