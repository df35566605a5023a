package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqlite"
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

// TestGroupCommitLockTimeoutFailsQueue: when another process holds the
// write lock past busy_timeout, the Updates queued behind the one that
// timed out fail with it (ErrUnavailable), without running: before, each
// waited busy_timeout in turn, so a request queued behind others waited
// several lock timeouts. The lock is released as soon as the first
// Update fails; a queued Update that still ran would then succeed.
func TestGroupCommitLockTimeoutFailsQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "phivault.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{BusyTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	db, err := sql.Open("sqlite", sqlite.DSN(path, time.Second, true)) // another process's writer
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	unlock := func() { once.Do(func() { _, _ = conn.ExecContext(context.Background(), "ROLLBACK") }) }
	defer unlock()

	first := make(chan error, 1)
	go func() { first <- s.Update(t.Context(), func(storage.Tx) error { return nil }) }()
	time.Sleep(200 * time.Millisecond) // the first Update is waiting for the lock
	const queued = 4
	var ran sync.Map
	errs := make(chan error, queued)
	for i := range queued {
		go func() {
			errs <- s.Update(t.Context(), func(storage.Tx) error { ran.Store(i, true); return nil })
		}()
	}
	if err := <-first; !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("the Update that met the lock: %v, want ErrUnavailable", err)
	}
	unlock()
	for range queued {
		if err := <-errs; !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("an Update queued behind a lock timeout: %v, want ErrUnavailable with it", err)
		}
	}
	ran.Range(func(k, _ any) bool { t.Errorf("queued Update %v ran", k); return true })
	// The store works once the lock is gone.
	if err := s.Update(t.Context(), func(storage.Tx) error { return nil }); err != nil {
		t.Fatalf("after the lock: %v", err)
	}
}

// TestGroupCommitRerunIsExact: a group of bulk loads runs first without savepoints,
// and when one of its fns fails it is rolled back whole and the others
// run again. Each Update reads a shared counter resource and writes its
// next version, so each fn depends on the writes of the fns before it in
// its group: after the reruns the counter must have been advanced
// exactly once per successful Update (a fn applied twice, or a failed
// one's write left behind, shows as a wrong final version), and every
// Update whose fn failed must leave nothing.
func TestGroupCommitRerunIsExact(t *testing.T) {
	s := open(t)
	ctx := storage.WithBulk(t.Context()) // only bulk loads' groups run without savepoints
	at := time.Unix(1700000000, 0).UTC()
	if err := s.Update(ctx, func(tx storage.Tx) error {
		return tx.Put(ctx, storage.Version{Type: "Basic", ID: "counter", Version: 1, Owner: "org", Ciphertext: []byte{0}, LastUpdated: at}, nil)
	}); err != nil {
		t.Fatal(err)
	}
	errBoom := errors.New("boom")
	const n = 300
	var runs sync.Map // i → times its fn ran
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Update(ctx, func(tx storage.Tx) error {
				c, _ := runs.LoadOrStore(i, new(int))
				*c.(*int)++
				cur, err := tx.Current(ctx, "Basic", "counter")
				if err != nil {
					return err
				}
				next := cur
				next.Version++
				if err := tx.Put(ctx, next, []storage.IndexRow{{Param: "code", Hash: []byte{byte(i), byte(i >> 8)}}}); err != nil {
					return err
				}
				v := storage.Version{Type: "Patient", ID: fmt.Sprintf("r%03d", i), Version: 1, Owner: "org", Ciphertext: []byte{1}, LastUpdated: at}
				if err := tx.Put(ctx, v, []storage.IndexRow{{Param: "name", Hash: []byte{byte(i)}}}); err != nil {
					return err
				}
				if i%7 == 3 {
					return errBoom
				}
				return nil
			})
		}()
	}
	wg.Wait()
	ok, reran := 0, 0
	for i, err := range errs {
		_, cerr := s.Current(ctx, "Patient", fmt.Sprintf("r%03d", i))
		if i%7 == 3 {
			if !errors.Is(err, errBoom) || !errors.Is(cerr, storage.ErrNotFound) {
				t.Errorf("update %d: %v, its patient: %v; want its own error and nothing stored", i, err, cerr)
			}
			continue
		}
		if err != nil || cerr != nil {
			t.Errorf("update %d: %v, its patient: %v", i, err, cerr)
			continue
		}
		ok++
		if c, _ := runs.Load(i); *c.(*int) > 1 {
			reran++
		}
	}
	cur, err := s.Current(ctx, "Basic", "counter")
	if err != nil {
		t.Fatal(err)
	}
	if cur.Version != int64(1+ok) {
		t.Errorf("counter at version %d after %d successful updates, want %d", cur.Version, ok, 1+ok)
	}
	t.Logf("%d updates committed, %d of them after running again", ok, reran)
}
