package storagetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/privacy"
	"github.com/phivault/phivault/internal/storage"
)

// AmendmentStores are the correction requests' stores: the reads
// (sqldb.Store) and the unit of work seen through privacy.AmendTx.
type AmendmentStores struct {
	Store privacy.AmendStore
	Unit  privacy.AmendUpdater
}

// RunAmendments is the correction requests' conformance suite
// (migration 0031): create, list (a patient's, the open ones, newest
// first), decide once, sealed bytes kept exactly, nothing written when
// the transaction fails.
func RunAmendments(t *testing.T, open func(t *testing.T) AmendmentStores) {
	st := open(t)
	ctx := t.Context()
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 123000, time.UTC)
	a := storage.Amendment{ID: "am-a", Patient: "Patient/p1", Requester: "u1", Part: "allergies", Created: t0, Request: []byte{0, 1, 2, 0xff}}
	b := storage.Amendment{ID: "am-b", Patient: "Patient/p2", Requester: "u2", Part: "results", Created: t0.Add(time.Minute), Request: []byte{9}}
	insert := func(x storage.Amendment, fail error) error {
		return st.Unit.Update(ctx, func(tx privacy.AmendTx) error {
			if err := tx.InsertAmendment(ctx, x); err != nil {
				return err
			}
			return fail
		})
	}
	if err := insert(a, errAuditFailed); !errors.Is(err, errAuditFailed) {
		t.Fatalf("insert with a failing fn: %v", err)
	}
	if _, err := st.Store.Amendment(ctx, "am-a"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after a failed transaction: %v, want ErrNotFound", err)
	}
	for _, x := range []storage.Amendment{a, b} {
		if err := insert(x, nil); err != nil {
			t.Fatalf("insert %s: %v", x.ID, err)
		}
	}
	if err := insert(a, nil); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("second insert of am-a: %v, want ErrConflict", err)
	}
	all, err := st.Store.Amendments(ctx, "", true, 10)
	if err != nil || len(all) != 2 || all[0].ID != "am-b" || all[1].ID != "am-a" {
		t.Fatalf("open requests %+v, %v; want am-b then am-a", all, err)
	}
	got := all[1]
	if got.Patient != a.Patient || got.Requester != a.Requester || got.Part != a.Part || !got.Created.Equal(t0) || !bytes.Equal(got.Request, a.Request) ||
		got.State != "open" || !got.Decided.IsZero() || got.Reason != nil {
		t.Errorf("stored %+v, want %+v open", got, a)
	}
	mine, err := st.Store.Amendments(ctx, "Patient/p1", false, 10)
	if err != nil || len(mine) != 1 || mine[0].ID != "am-a" {
		t.Fatalf("p1's requests %+v, %v", mine, err)
	}
	at := t0.Add(time.Hour)
	decide := func(id, state string, reason []byte) error {
		return st.Unit.Update(ctx, func(tx privacy.AmendTx) error { return tx.DecideAmendment(ctx, id, state, "usr_po", at, reason) })
	}
	if err := decide("am-a", "denied", []byte{7, 7}); err != nil {
		t.Fatal(err)
	}
	if err := decide("am-a", "accepted", nil); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("deciding twice: %v, want ErrConflict", err)
	}
	if err := decide("am-none", "accepted", nil); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("deciding an unknown request: %v, want ErrNotFound", err)
	}
	got, err = st.Store.Amendment(ctx, "am-a")
	if err != nil || got.State != "denied" || !got.Decided.Equal(at) || got.Decider != "usr_po" || !bytes.Equal(got.Reason, []byte{7, 7}) {
		t.Errorf("decided %+v, %v", got, err)
	}
	if open, err := st.Store.Amendments(ctx, "", true, 10); err != nil || len(open) != 1 || open[0].ID != "am-b" {
		t.Errorf("open after the decision %+v, %v", open, err)
	}
}
