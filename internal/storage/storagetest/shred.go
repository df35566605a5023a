package storagetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// Erasure (Tx.Shred): the key, index rows and ciphertext of an owner go
// in one transaction (writes refused afterwards: joint.go).

func testShred(t *testing.T, s storage.Store) {
	ctx := t.Context()
	for _, owner := range []ident.Owner{"Patient/p1", "Patient/p2"} {
		k := storage.KeyRecord{Owner: owner, Wrapped: []byte("dek"), KEKID: 1, Created: at(0), Ledger: []byte("sealed secret")}
		if err := s.Update(ctx, func(tx storage.Tx) error { return tx.PutKey(ctx, k) }); err != nil {
			t.Fatal(err)
		}
	}
	put(t, s, ver("Patient", "p1", 1, "Patient/p1", at(0)), tok("name", "ann"))
	put(t, s, ver("Observation", "o1", 1, "Patient/p1", at(1)), tok("code", "a"))
	put(t, s, ver("Observation", "o1", 2, "Patient/p1", at(2)), tok("code", "a"))
	put(t, s, ver("Observation", "o2", 1, "Patient/p2", at(3)), tok("code", "a"))
	put(t, s, ver("Observation", "o3", 1, "Patient/p1", at(4)))
	put(t, s, storage.Version{Type: "Observation", ID: "o3", Version: 2, Owner: "Patient/p1", LastUpdated: at(5), Deleted: true})

	var n int64
	err := s.Update(ctx, func(tx storage.Tx) (err error) {
		n, err = tx.Shred(ctx, "Patient/p1")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("Shred erased %d resources, want 2 (p1, o1; o3 was already deleted)", n)
	}
	k, err := s.Key(ctx, "Patient/p1")
	if err != nil || k.Wrapped != nil || !k.Shredded || k.KEKID != 1 {
		t.Errorf("shredded key record: %+v %v", k, err)
	}
	if k, _ := s.Key(ctx, "Patient/p2"); k.Shredded || k.Wrapped == nil || string(k.Ledger) != "sealed secret" {
		t.Errorf("other owner's key touched: %+v", k)
	}
	if k.Ledger != nil {
		t.Errorf("the shredded key record keeps its ledger secret")
	}
	// A ledger secret is set once; a re-wrap without one keeps it.
	for _, c := range []struct {
		owner ident.Owner
		want  bool
	}{{"Patient/p2", false}, {"Patient/p1", false}} {
		var set bool
		if err := s.Update(ctx, func(tx storage.Tx) (err error) {
			set, err = tx.SetLedgerSecret(ctx, c.owner, []byte("other"))
			return err
		}); err != nil || set != c.want {
			t.Errorf("SetLedgerSecret(%s) = %v, %v; want %v", c.owner, set, err, c.want)
		}
	}
	putOwnerKey(t, s, "Patient/p3")
	for _, want := range []bool{true, false} {
		var set bool
		if err := s.Update(ctx, func(tx storage.Tx) (err error) {
			set, err = tx.SetLedgerSecret(ctx, "Patient/p3", []byte("first"))
			return err
		}); err != nil || set != want {
			t.Errorf("SetLedgerSecret(p3) = %v, %v; want %v", set, err, want)
		}
	}
	if err := s.Update(ctx, func(tx storage.Tx) error {
		return tx.ReplaceKey(ctx, storage.KeyRecord{Owner: "Patient/p3", Wrapped: []byte("rewrapped"), KEKID: 1})
	}); err != nil {
		t.Fatal(err)
	}
	if k, err := s.Key(ctx, "Patient/p3"); err != nil || string(k.Ledger) != "first" || string(k.Wrapped) != "rewrapped" {
		t.Errorf("after a re-wrap: %+v %v, want the ledger secret kept", k, err)
	}
	for _, r := range [][2]string{{"Patient", "p1"}, {"Observation", "o1"}, {"Observation", "o3"}} {
		v, err := s.Current(ctx, r[0], r[1])
		if err != nil || !v.Deleted || v.Ciphertext != nil {
			t.Errorf("%s/%s after shred: %+v %v", r[0], r[1], v, err)
		}
	}
	if v, _ := s.Current(ctx, "Observation", "o1"); v.Version != 3 {
		t.Errorf("o1 delete marker is version %d, want 3", v.Version)
	}
	// Every version p1 sealed lost its ciphertext with the key (a process
	// still caching the key finds nothing to open); p2's kept theirs.
	for _, r := range []storage.VersionRef{{Type: "Patient", ID: "p1", Version: 1}, {Type: "Observation", ID: "o1", Version: 1},
		{Type: "Observation", ID: "o1", Version: 2}, {Type: "Observation", ID: "o3", Version: 1}} {
		if v, err := s.VersionOf(ctx, r.Type, r.ID, r.Version); err != nil || v.Ciphertext != nil || v.Deleted {
			t.Errorf("%s/%s/%d after shred: %+v %v, want a live version without ciphertext", r.Type, r.ID, r.Version, v, err)
		}
	}
	if v, err := s.VersionOf(ctx, "Observation", "o2", 1); err != nil || v.Ciphertext == nil {
		t.Errorf("other owner's version after shred: %+v %v", v, err)
	}
	res := search(t, s, storage.Query{Type: "Observation", Clauses: one(codeIs("a")), Count: 10})
	if got := ids(res.Versions); !slices.Equal(got, []string{"o2"}) {
		t.Errorf("search after shred: %v, want [o2]", got)
	}
	// The index rows are gone, not just hidden: :missing sees none.
	res = search(t, s, storage.Query{Type: "Patient", Clauses: one(storage.Cond{Kind: storage.CondMissing, Param: "name", Missing: true}), Count: 10})
	if len(res.Versions) != 0 {
		t.Errorf("shredded patient still searchable: %v", ids(res.Versions))
	}
	if c, _ := s.Counts(ctx); c["Observation"] != 1 || c["Patient"] != 0 {
		t.Errorf("Counts after shred: %v", c)
	}
	if err := s.Update(ctx, func(tx storage.Tx) (err error) { n, err = tx.Shred(ctx, "Patient/p1"); return err }); err != nil || n != 0 {
		t.Errorf("second Shred: %d, %v; want 0, nil", n, err)
	}
	if err := s.Update(ctx, func(tx storage.Tx) error {
		return tx.ReplaceKey(ctx, storage.KeyRecord{Owner: "Patient/p1", Wrapped: []byte("revived"), KEKID: 2})
	}); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("ReplaceKey of a shredded key: %v, want ErrConflict", err)
	}
}
