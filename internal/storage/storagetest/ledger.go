package storagetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// testLedgerScans checks the scans of storage.LedgerReader (the ledger
// check of "phivault verify"): every current pointer once, in (type, id)
// order bytewise; every resource's index rows in one call, also when a
// resource has more rows than a scan batch or a batch ends inside a
// resource, in runs of one resource (in any order); and one resource's
// consistent snapshot.
func testLedgerScans(t *testing.T, s storage.Store) {
	lr, ok := s.(storage.LedgerReader)
	if !ok {
		t.Fatal("the store does not implement storage.LedgerReader")
	}
	ctx := t.Context()
	// 600 resources of 7 rows (batches of 4096 end inside one), one of
	// 5000 rows (more than a batch), ids whose bytewise order differs
	// from a case-insensitive one, a delete marker (no rows).
	var want []string
	rows := map[string]int{}
	err := s.Update(ctx, func(tx storage.Tx) error {
		for i := range 600 {
			id := fmt.Sprintf("o%04d", i)
			var idx []storage.IndexRow
			for k := range 7 {
				idx = append(idx, tok("code", fmt.Sprintf("%d-%d", i, k)))
			}
			idx[6] = date("date", int64(i), int64(i)+10)
			if err := tx.Put(ctx, ver("Observation", id, 1, "org", at(i)), idx); err != nil {
				return err
			}
			want, rows["Observation/"+id] = append(want, "Observation/"+id), 7
		}
		var big []storage.IndexRow
		for k := range 5000 {
			big = append(big, tok("name", fmt.Sprint(k)))
		}
		for _, id := range []string{"B", "a", "b-big"} {
			idx := []storage.IndexRow{tok("name", id)}
			if id == "b-big" {
				idx = big
			}
			if err := tx.Put(ctx, ver("Patient", id, 1, ident.PatientOwner(id), at(0)), idx); err != nil {
				return err
			}
			want, rows["Patient/"+id] = append(want, "Patient/"+id), len(idx)
		}
		if err := tx.Put(ctx, ver("Patient", "gone", 1, "Patient/gone", at(0)), []storage.IndexRow{tok("name", "g")}); err != nil {
			return err
		}
		del := ver("Patient", "gone", 2, "Patient/gone", at(1))
		del.Deleted, del.Ciphertext = true, nil
		want = append(want, "Patient/gone")
		return tx.Put(ctx, del, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)

	var got []string
	if err := lr.ScanCurrent(ctx, func(c storage.Current) error {
		got = append(got, c.Type+"/"+c.ID)
		if c.Type == "Patient" && c.ID == "gone" && (!c.Deleted || c.Version != 2 || !c.LastUpdated.Equal(at(1))) {
			t.Errorf("current pointer of the deleted resource: %+v", c)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("ScanCurrent: %d pointers, want %d in bytewise order; first %q", len(got), len(want), got[:min(5, len(got))])
	}

	seen := map[string]int{}
	if err := lr.ScanIndex(ctx, func(typ, id string, rs []storage.IndexRow) error {
		k := typ + "/" + id
		if len(rs) == 0 {
			t.Errorf("ScanIndex passed an empty run for %s", k)
		}
		seen[k] += len(rs)
		for _, r := range rs {
			if r.Param == "date" && (!r.IsDate || r.Hash != nil || r.Hi != r.Lo+10) {
				t.Errorf("%s: date row read as %+v", k, r)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(rows) {
		t.Errorf("ScanIndex saw %d resources with rows, want %d", len(seen), len(rows))
	}
	for k, n := range rows {
		if seen[k] != n {
			t.Errorf("ScanIndex: %s has %d rows, want %d", k, seen[k], n)
		}
	}

	st, err := lr.Resource(ctx, "Patient", "gone")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Versions) != 2 || st.Versions[0].Version != 1 || !st.Versions[1].Deleted || st.Current == nil || st.Current.Version != 2 || len(st.Index) != 0 {
		t.Errorf("Resource(Patient/gone) = %+v", st)
	}
	equalVersion(t, st.Versions[0], ver("Patient", "gone", 1, "Patient/gone", at(0)))
	st, err = lr.Resource(ctx, "Patient", "b-big")
	if err != nil || len(st.Index) != 5000 || st.Current == nil || len(st.Versions) != 1 {
		t.Errorf("Resource(Patient/b-big): %d rows, %v", len(st.Index), err)
	}
	st, err = lr.Resource(ctx, "Patient", "none")
	if err != nil || len(st.Versions) != 0 || st.Current != nil || len(st.Index) != 0 {
		t.Errorf("Resource of nothing stored = %+v, %v; want an empty state", st, err)
	}
}
