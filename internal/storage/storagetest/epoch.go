package storagetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// EpochStores is what the KEK epoch suite needs from a driver.
type EpochStores struct {
	Store  storage.Store
	Epochs storage.EpochStore
	// CompactKeys is the driver's post-epoch compaction (WAL checkpoint,
	// VACUUM).
	CompactKeys func(ctx context.Context) error
	// Other, when set, is a second store on the same database (another
	// process of a fleet): the fence must hold across processes.
	Other storage.Store
}

// RunEpoch runs the KEK epoch conformance suite (ADR 0015).
func RunEpoch(t *testing.T, open func(t *testing.T) EpochStores) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s EpochStores)
	}{
		{"EpochRoundTrip", testEpochRoundTrip},
		{"Fence", testEpochFence},
		{"FenceWaitsForKeyWrites", testEpochFenceWaits},
		{"CountAndCompact", testEpochCountCompact},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

func putKey(t *testing.T, s storage.Store, k storage.KeyRecord) error {
	t.Helper()
	return s.Update(t.Context(), func(tx storage.Tx) error { return tx.PutKey(t.Context(), k) })
}

func testEpochRoundTrip(t *testing.T, s EpochStores) {
	ctx := t.Context()
	// Latest of an empty store is ErrNotFound (the contract of EpochTx).
	var latest storage.KEKEpoch
	var latestErr error
	err := s.Epochs.UpdateEpoch(ctx, func(tx storage.EpochTx) error {
		latest, latestErr = tx.Latest(ctx)
		return nil
	})
	if err != nil || !errors.Is(latestErr, storage.ErrNotFound) || latest.Epoch != 0 {
		t.Fatalf("Latest of an empty store: %+v, %v, %v; want ErrNotFound", latest, latestErr, err)
	}
	e1 := storage.KEKEpoch{Epoch: 1, State: storage.EpochAdding, PrevPrimary: 4000000000, Started: at(1), Holder: "host/1", Heartbeat: at(2)}
	e2 := storage.KEKEpoch{Epoch: 2, State: storage.EpochRetained, KEKID: 7, PrevPrimary: 6, Started: at(3), Rewrapped: at(4),
		DestroyAfter: at(5), Erasures: 3, Holder: "host/2", Heartbeat: at(6)}
	for _, e := range []storage.KEKEpoch{e1, e2} {
		if err := s.Epochs.UpdateEpoch(ctx, func(tx storage.EpochTx) error { return tx.PutEpoch(ctx, e) }); err != nil {
			t.Fatal(err)
		}
	}
	e1.State, e1.KEKID, e1.Completed = storage.EpochComplete, 4000000001, at(9)
	err = s.Epochs.UpdateEpoch(ctx, func(tx storage.EpochTx) (err error) {
		if err := tx.PutEpoch(ctx, e1); err != nil {
			return err
		}
		latest, err = tx.Latest(ctx)
		return err
	})
	if err != nil || !reflect.DeepEqual(latest, e2) {
		t.Fatalf("Latest = %+v, %v; want %+v", latest, err, e2)
	}
	got, err := s.Epochs.Epochs(ctx)
	if err != nil || !reflect.DeepEqual(got, []storage.KEKEpoch{e1, e2}) {
		t.Fatalf("Epochs = %+v, %v", got, err)
	}
	for _, bad := range []storage.KEKEpoch{{Epoch: 0, State: storage.EpochAdding, Holder: "h"}, {Epoch: 3, State: "paused", Holder: "h"}, {Epoch: 3, State: storage.EpochAdding}} {
		if err := s.Epochs.UpdateEpoch(ctx, func(tx storage.EpochTx) error { return tx.PutEpoch(ctx, bad) }); err == nil {
			t.Errorf("PutEpoch(%+v) succeeded", bad)
		}
	}
}

// testEpochFence: once an epoch retired a KEK key id, no key record
// wrapped under it can be stored, by this store or another process.
func testEpochFence(t *testing.T, s EpochStores) {
	ctx := t.Context()
	if err := putKey(t, s.Store, storage.KeyRecord{Owner: "Patient/a", Wrapped: []byte("w"), KEKID: 11, Created: at(0)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Epochs.UpdateEpoch(ctx, func(tx storage.EpochTx) error { return tx.Retire(ctx, 1, []uint32{11, 12}) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Epochs.UpdateEpoch(ctx, func(tx storage.EpochTx) error { return tx.Retire(ctx, 1, []uint32{0}) }); err == nil {
		t.Error("retiring the KMS id 0 succeeded")
	}
	stores := []storage.Store{s.Store}
	if s.Other != nil {
		stores = append(stores, s.Other)
	}
	for i, st := range stores {
		owner := ident.PatientOwner(fmt.Sprintf("b%d", i))
		err := putKey(t, st, storage.KeyRecord{Owner: owner, Wrapped: []byte("w"), KEKID: 12, Created: at(0)})
		if !errors.Is(err, storage.ErrRetiredKEK) || !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("store %d: PutKey under a retired KEK: %v, want ErrRetiredKEK and ErrUnavailable", i, err)
		}
		if _, err := st.Key(ctx, owner); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("store %d: a refused PutKey stored the key: %v", i, err)
		}
		err = st.Update(ctx, func(tx storage.Tx) error {
			return tx.ReplaceKey(ctx, storage.KeyRecord{Owner: "Patient/a", Wrapped: []byte("w2"), KEKID: 11})
		})
		if !errors.Is(err, storage.ErrRetiredKEK) {
			t.Errorf("store %d: ReplaceKey under a retired KEK: %v, want ErrRetiredKEK", i, err)
		}
		if err := st.Update(ctx, func(tx storage.Tx) error {
			return tx.ReplaceKey(ctx, storage.KeyRecord{Owner: "Patient/a", Wrapped: []byte("w3"), KEKID: 13})
		}); err != nil {
			t.Errorf("store %d: ReplaceKey under a live KEK: %v", i, err)
		}
		if err := putKey(t, st, storage.KeyRecord{Owner: owner + "kms", Wrapped: []byte("w"), KEKID: 0, Created: at(0)}); err != nil {
			t.Errorf("store %d: PutKey under a KMS KEK (id 0): %v", i, err)
		}
	}
	if k, _ := s.Store.Key(ctx, "Patient/a"); string(k.Wrapped) != "w3" || k.KEKID != 13 {
		t.Errorf("key after the fenced and the allowed replace: %+v", k)
	}
	at9 := at(9)
	if err := s.Epochs.UpdateEpoch(ctx, func(tx storage.EpochTx) error { return tx.MarkDestroyed(ctx, []uint32{11}, at9) }); err != nil {
		t.Fatal(err)
	}
	got, err := s.Epochs.RetiredKEKs(ctx)
	want := []storage.RetiredKEK{{KEKID: 11, Epoch: 1, Destroyed: at9}, {KEKID: 12, Epoch: 1}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("RetiredKEKs = %+v, %v; want %+v", got, err, want)
	}
}

// testEpochFenceWaits: a key write that passed the fence check before an
// epoch retired its KEK key commits before the epoch's transaction, so
// the epoch sees it (and re-wraps it): no record under a retired key can
// appear after the epoch counted none.
func testEpochFenceWaits(t *testing.T, s EpochStores) {
	ctx := t.Context()
	writer := s.Store
	if s.Other != nil {
		writer = s.Other
	}
	inTx, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		once := sync.Once{}
		werr = writer.Update(ctx, func(tx storage.Tx) error {
			if err := tx.PutKey(ctx, storage.KeyRecord{Owner: "Patient/late", Wrapped: []byte("w"), KEKID: 21, Created: at(0)}); err != nil {
				return err
			}
			once.Do(func() { close(inTx) })
			<-release
			return nil
		})
	}()
	<-inTx
	var counted int64
	done := make(chan error, 1)
	go func() {
		done <- s.Epochs.UpdateEpoch(ctx, func(tx storage.EpochTx) error {
			if err := tx.Retire(ctx, 1, []uint32{21}); err != nil {
				return err
			}
			n, err := tx.CountNotUnder(ctx, 22)
			counted = n
			return err
		})
	}()
	// Give the epoch a chance to run ahead of the writer: it must not.
	select {
	case err := <-done:
		close(release)
		wg.Wait()
		t.Fatalf("the fence committed while a key write that passed its check was in flight (err %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	wg.Wait()
	if werr != nil {
		t.Fatalf("the key write: %v", werr)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if counted != 1 {
		t.Fatalf("the epoch counted %d records not under the new KEK, want 1 (the key written just before the fence)", counted)
	}
}

func testEpochCountCompact(t *testing.T, s EpochStores) {
	ctx := t.Context()
	for i, id := range []uint32{5, 5, 6} {
		if err := putKey(t, s.Store, storage.KeyRecord{Owner: ident.PatientOwner(fmt.Sprintf("c%d", i)), Wrapped: []byte("w"), KEKID: id, Created: at(0)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Store.Update(ctx, func(tx storage.Tx) error { _, err := tx.Shred(ctx, "Patient/c2"); return err }); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := s.Epochs.UpdateEpoch(ctx, func(tx storage.EpochTx) (err error) { n, err = tx.CountNotUnder(ctx, 5); return err }); err != nil || n != 0 {
		t.Errorf("CountNotUnder(5) = %d, %v; want 0 (the key under 6 is shredded)", n, err)
	}
	if err := s.Epochs.UpdateEpoch(ctx, func(tx storage.EpochTx) (err error) { n, err = tx.CountNotUnder(ctx, 6); return err }); err != nil || n != 2 {
		t.Errorf("CountNotUnder(6) = %d, %v; want 2", n, err)
	}
	if err := s.CompactKeys(ctx); err != nil {
		t.Fatalf("CompactKeys: %v", err)
	}
	if k, err := s.Store.Key(ctx, "Patient/c0"); err != nil || string(k.Wrapped) != "w" {
		t.Fatalf("a key after compaction: %+v, %v", k, err)
	}
}
