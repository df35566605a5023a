package storagetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// Conformance cases of the storage features behind resources that name
// several patients (joint owners), type-level history narrowed on the
// current version, and the other reads authorization uses.

func putOwnerKey(t *testing.T, s storage.Store, owner ident.Owner) {
	t.Helper()
	k := storage.KeyRecord{Owner: owner, Wrapped: []byte("dek:" + owner.String()), KEKID: 1, Created: at(0)}
	if err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.PutKey(t.Context(), k) }); err != nil {
		t.Fatal(err)
	}
}

// testJointOwners: the patients of a joint owner are recorded once,
// read back sorted, found from any of them, and erasing any of them
// shreds the joint key and erases its resources.
func testJointOwners(t *testing.T, s storage.Store) {
	ctx := t.Context()
	j, k := ident.JointOwner("ab"), ident.JointOwner("bc")
	for _, o := range []ident.Owner{"Patient/a", "Patient/b", "Patient/c", j, k} {
		putOwnerKey(t, s, o)
	}
	if err := s.Update(ctx, func(tx storage.Tx) error {
		if err := tx.PutJointOwner(ctx, j, []ident.Owner{"Patient/a", "Patient/b"}); err != nil {
			return err
		}
		if err := tx.PutJointOwner(ctx, j, []ident.Owner{"Patient/a", "Patient/b"}); err != nil {
			return err // again: a no-op
		}
		if m, err := tx.JointMembers(ctx, j); err != nil || !slices.Equal(m, []ident.Owner{"Patient/a", "Patient/b"}) {
			t.Errorf("JointMembers in tx: %v %v", m, err)
		}
		return tx.PutJointOwner(ctx, k, []ident.Owner{"Patient/c", "Patient/b"})
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx storage.Tx) error {
		return tx.PutJointOwner(ctx, "Patient/x", []ident.Owner{"Patient/a", "Patient/b"})
	}); err == nil {
		t.Error("PutJointOwner of a non-joint owner succeeded")
	}
	if err := s.Update(ctx, func(tx storage.Tx) error {
		return tx.PutJointOwner(ctx, ident.JointOwner("one"), []ident.Owner{"Patient/a"})
	}); err == nil {
		t.Error("PutJointOwner with one patient succeeded")
	}
	if m, err := s.JointMembers(ctx, k); err != nil || !slices.Equal(m, []ident.Owner{"Patient/b", "Patient/c"}) {
		t.Errorf("JointMembers = %v %v, want [Patient/b Patient/c]", m, err)
	}
	if _, err := s.JointMembers(ctx, ident.JointOwner("none")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown joint owner: %v, want ErrNotFound", err)
	}
	got, err := s.JointOwners(ctx, []ident.Owner{"Patient/a"}, 10)
	if err != nil || len(got) != 1 || !slices.Equal(got[j], []ident.Owner{"Patient/a", "Patient/b"}) {
		t.Errorf("JointOwners(a) = %v %v", got, err)
	}
	if got, err = s.JointOwners(ctx, []ident.Owner{"Patient/b", "Patient/z"}, 10); err != nil || len(got) != 2 {
		t.Errorf("JointOwners(b) = %v %v, want both", got, err)
	}
	if got, err = s.JointOwners(ctx, nil, 10); err != nil || len(got) != 0 {
		t.Errorf("JointOwners(none) = %v %v", got, err)
	}

	put(t, s, ver("Coverage", "cv1", 1, j, at(1)), tok("status", "active"))
	put(t, s, ver("Coverage", "cv2", 1, k, at(2)), tok("status", "active"))
	put(t, s, ver("Observation", "o1", 1, "Patient/a", at(3)))
	// $everything reads a patient's own resources and the joint ones.
	vs, err := s.Owned(ctx, []ident.Owner{"Patient/a", j}, storage.VersionRef{}, 10)
	if err != nil || !slices.Equal(refs(vs), []string{"Coverage/cv1/1", "Observation/o1/1"}) {
		t.Errorf("Owned(a, j) = %v %v", refs(vs), err)
	}
	vs, err = s.Owned(ctx, []ident.Owner{"Patient/a", j}, storage.VersionRef{Type: "Coverage", ID: "cv1"}, 10)
	if err != nil || !slices.Equal(refs(vs), []string{"Observation/o1/1"}) {
		t.Errorf("Owned after Coverage/cv1 = %v %v", refs(vs), err)
	}
	if vs, err = s.Owned(ctx, nil, storage.VersionRef{}, 10); err != nil || len(vs) != 0 {
		t.Errorf("Owned(no owners) = %v %v", refs(vs), err)
	}

	// Erasing a: its key, and the joint key it shares with b, go; the
	// joint key of b and c stays.
	var n int64
	if err := s.Update(ctx, func(tx storage.Tx) (err error) { n, err = tx.Shred(ctx, "Patient/a"); return err }); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("Shred(a) erased %d resources, want 2 (o1 and the joint cv1)", n)
	}
	for owner, shredded := range map[ident.Owner]bool{"Patient/a": true, j: true, "Patient/b": false, k: false} {
		if rec, err := s.Key(ctx, owner); err != nil || rec.Shredded != shredded || (rec.Wrapped == nil) != shredded {
			t.Errorf("key %s after Shred(a): %+v %v, want shredded=%v", owner, rec, err, shredded)
		}
	}
	if v, err := s.Current(ctx, "Coverage", "cv1"); err != nil || !v.Deleted {
		t.Errorf("joint resource after Shred(a): %+v %v", v, err)
	}
	if v, err := s.Current(ctx, "Coverage", "cv2"); err != nil || v.Deleted {
		t.Errorf("unrelated joint resource after Shred(a): %+v %v", v, err)
	}
	// A version for an erased owner (the patient's, or the joint one) is
	// refused in the transaction: created or updated, it would outlive
	// the erasure.
	for _, v := range []storage.Version{ver("Observation", "o2", 1, "Patient/a", at(4)), ver("Coverage", "cv1", 3, j, at(4)),
		ver("Coverage", "cv2", 2, "Patient/a", at(4))} {
		err := s.Update(ctx, func(tx storage.Tx) error { return tx.Put(ctx, v, []storage.IndexRow{tok("status", "active")}) })
		if !errors.Is(err, storage.ErrErased) {
			t.Errorf("Put %s/%s/%d owned by %s after Shred(a): %v, want ErrErased", v.Type, v.ID, v.Version, v.Owner, err)
		}
	}
	if _, err := s.Current(ctx, "Observation", "o2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("refused create after Shred(a) is stored: %v", err)
	}
	put(t, s, ver("Coverage", "cv2", 2, k, at(4)), tok("status", "active"))

	// Every joint owner, with its recorded patients and key state.
	got2 := map[ident.Owner]storage.JointOwner{}
	if err := s.ScanJointOwners(ctx, func(o storage.JointOwner) error { got2[o.Owner] = o; return nil }); err != nil {
		t.Fatal(err)
	}
	want := map[ident.Owner]storage.JointOwner{
		j: {Owner: j, Members: []ident.Owner{"Patient/a", "Patient/b"}, HasKey: true, Shredded: true},
		k: {Owner: k, Members: []ident.Owner{"Patient/b", "Patient/c"}, HasKey: true},
	}
	if len(got2) != len(want) {
		t.Errorf("ScanJointOwners = %+v, want %+v", got2, want)
	}
	for o, w := range want {
		if g := got2[o]; g.Owner != w.Owner || !slices.Equal(g.Members, w.Members) || g.HasKey != w.HasKey || g.Shredded != w.Shredded {
			t.Errorf("ScanJointOwners[%s] = %+v, want %+v", o, g, w)
		}
	}
	// ShredOwner shreds one owner: not the joint owners of a patient.
	if err := s.Update(ctx, func(tx storage.Tx) (err error) { n, err = tx.ShredOwner(ctx, "Patient/b"); return err }); err != nil {
		t.Fatal(err)
	}
	if rec, err := s.Key(ctx, k); err != nil || rec.Shredded {
		t.Errorf("ShredOwner(b) shredded the joint key of b and c: %+v %v", rec, err)
	}
	if rec, err := s.Key(ctx, "Patient/b"); err != nil || !rec.Shredded {
		t.Errorf("ShredOwner(b): %+v %v", rec, err)
	}
}

// testTypes: every type with a stored resource, deleted ones included.
func testTypes(t *testing.T, s storage.Store) {
	if ts, err := s.Types(t.Context()); err != nil || len(ts) != 0 {
		t.Fatalf("Types of an empty store = %v %v", ts, err)
	}
	put(t, s, ver("Patient", "p", 1, "Patient/p", at(1)))
	put(t, s, ver("Observation", "o", 1, "Patient/p", at(2)))
	put(t, s, storage.Version{Type: "Observation", ID: "o", Version: 2, Owner: "Patient/p", LastUpdated: at(3), Deleted: true})
	put(t, s, ver("Basic", "b", 1, "org", at(4)))
	put(t, s, storage.Version{Type: "Basic", ID: "b", Version: 2, Owner: "org", LastUpdated: at(5), Deleted: true})
	if ts, err := s.Types(t.Context()); err != nil || !slices.Equal(ts, []string{"Basic", "Observation", "Patient"}) {
		t.Errorf("Types = %v %v", ts, err)
	}
}

// testHistoryCurrent: type-level history narrowed on the resource's
// current version (owner and labels, deleted current versions
// included), combined with the versions' own owners.
func testHistoryCurrent(t *testing.T, s storage.Store) {
	psy := []byte("psy")
	put(t, s, ver("Observation", "x", 1, "Patient/a", at(1)))                                                       // unlabelled v1...
	put(t, s, ver("Observation", "x", 2, "Patient/a", at(2)), storage.IndexRow{Param: "authz:security", Hash: psy}) // ...labelled since
	put(t, s, ver("Observation", "y", 1, "Patient/a", at(3)))
	put(t, s, ver("Observation", "z", 1, "Patient/b", at(4)))
	put(t, s, storage.Version{Type: "Observation", ID: "z", Version: 2, Owner: "Patient/b", LastUpdated: at(5), Deleted: true})
	hist := func(q storage.HistoryQuery) []string {
		t.Helper()
		q.Type, q.Count = "Observation", 10
		vs, err := s.History(t.Context(), q)
		if err != nil {
			t.Fatalf("history: %v", err)
		}
		return refs(vs)
	}
	noLabel := storage.Clause{Any: []storage.Cond{{Kind: storage.CondHash, Param: "authz:security", Hashes: [][]byte{psy}, Negate: true}}}
	if got := hist(storage.HistoryQuery{Current: []storage.Clause{noLabel}}); !slices.Equal(got, []string{"Observation/z/2", "Observation/z/1", "Observation/y/1"}) {
		t.Errorf("history without the label on the current version = %v", got)
	}
	onlyA := storage.Clause{Any: []storage.Cond{{Kind: storage.CondOwner, Owners: []ident.Owner{"Patient/a"}}}}
	if got := hist(storage.HistoryQuery{Current: []storage.Clause{onlyA, noLabel}}); !slices.Equal(got, []string{"Observation/y/1"}) {
		t.Errorf("history of a's unlabelled resources = %v", got)
	}
	allowed := storage.Clause{Any: []storage.Cond{{Kind: storage.CondOwner, Owners: []ident.Owner{"Patient/b"}}, {Kind: storage.CondID, IDs: []string{"x"}, Authz: true}}}
	got := hist(storage.HistoryQuery{Current: []storage.Clause{allowed}, Owners: &storage.OwnerSet{In: []ident.Owner{"Patient/a"}, Except: true}})
	if !slices.Equal(got, []string{"Observation/z/2", "Observation/z/1"}) {
		t.Errorf("history of b, or x, minus a's versions = %v", got)
	}
	if _, err := s.History(t.Context(), storage.HistoryQuery{Count: 10, Current: []storage.Clause{onlyA}}); err == nil {
		t.Error("history narrowed on the current version without a type succeeded")
	}
	// Ids added by authorization count against MaxOwners, not MaxValues.
	many := make([]string, storage.MaxValues+1)
	for i := range many {
		many[i] = "id" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
	}
	q := storage.Query{Type: "Observation", Count: 1, Clauses: []storage.Clause{{Any: []storage.Cond{{Kind: storage.CondID, IDs: many, Authz: true}}}}}
	if _, err := s.Search(t.Context(), q); err != nil {
		t.Errorf("%d narrowing ids: %v", len(many), err)
	}
	q.Clauses[0].Any[0].Authz = false
	if _, err := s.Search(t.Context(), q); !errors.Is(err, storage.ErrTooComplex) {
		t.Errorf("%d search ids: %v, want ErrTooComplex", len(many), err)
	}
}
