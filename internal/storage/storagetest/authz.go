package storagetest

import (
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// Conformance cases of the storage features authorization relies on:
// owner-narrowed searches and history, and index replacement (reindex).

// testSearchOwner: CondOwner (authorization narrowing) restricts matches,
// totals and paging to the owners listed (or, negated, to the others),
// and composes with index conditions in one disjunction.
func testSearchOwner(t *testing.T, s storage.Store) {
	label := []byte("psy")
	put(t, s, ver("Observation", "a1", 1, "Patient/a", at(1)))
	put(t, s, ver("Observation", "a2", 1, "Patient/a", at(2)), storage.IndexRow{Param: "authz:security", Hash: label})
	put(t, s, ver("Observation", "b1", 1, "Patient/b", at(3)))
	put(t, s, ver("Observation", "o1", 1, "org", at(4)))
	owner := func(neg bool, os ...ident.Owner) storage.Cond {
		return storage.Cond{Kind: storage.CondOwner, Owners: os, Negate: neg}
	}
	for _, tc := range []struct {
		name    string
		clauses []storage.Clause
		want    []string
	}{
		{"one owner", one(owner(false, "Patient/a")), []string{"a1", "a2"}},
		{"two owners", one(owner(false, "Patient/a", "org")), []string{"a1", "a2", "o1"}},
		{"none", one(owner(false)), nil},
		{"all but", one(owner(true, "Patient/a")), []string{"b1", "o1"}},
		{"all but none", one(owner(true)), []string{"a1", "a2", "b1", "o1"}},
		{"label rule", []storage.Clause{
			{Any: []storage.Cond{owner(false, "Patient/a", "Patient/b")}},
			{Any: []storage.Cond{{Kind: storage.CondHash, Param: "authz:security", Hashes: [][]byte{label}, Negate: true}, owner(false, "Patient/b")}},
		}, []string{"a1", "b1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := search(t, s, storage.Query{Type: "Observation", Count: 10, Total: true, Clauses: tc.clauses})
			if got := ids(res.Versions); !slices.Equal(got, tc.want) {
				t.Errorf("matches %v, want %v", got, tc.want)
			}
			if res.Total != int64(len(tc.want)) {
				t.Errorf("total %d, want %d", res.Total, len(tc.want))
			}
		})
	}
	many := make([]ident.Owner, storage.MaxOwners+1)
	for i := range many {
		many[i] = ident.PatientOwner(strconv.Itoa(i))
	}
	if _, err := s.Search(t.Context(), storage.Query{Type: "Observation", Count: 1, Clauses: one(owner(false, many...))}); !errors.Is(err, storage.ErrTooComplex) {
		t.Errorf("%d owners: %v, want ErrTooComplex", len(many), err)
	}
}

// testReplaceIndex: the rows of the current version are replaced; a
// stale version is a conflict; a delete marker keeps none.
func testReplaceIndex(t *testing.T, s storage.Store) {
	ctx := t.Context()
	put(t, s, ver("Observation", "r1", 1, "org", at(1)), storage.IndexRow{Param: "code", Hash: []byte("old")})
	put(t, s, ver("Observation", "r1", 2, "org", at(2)), storage.IndexRow{Param: "code", Hash: []byte("old")})
	replace := func(v int64, rows ...storage.IndexRow) error {
		return s.Update(ctx, func(tx storage.Tx) error { return tx.ReplaceIndex(ctx, "Observation", "r1", v, rows) })
	}
	if err := replace(1, storage.IndexRow{Param: "code", Hash: []byte("new")}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("stale version: %v, want ErrConflict", err)
	}
	if err := replace(2, storage.IndexRow{Param: "code", Hash: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	find := func(h string) []string {
		return ids(search(t, s, storage.Query{Type: "Observation", Count: 10, Clauses: one(storage.Cond{Kind: storage.CondHash, Param: "code", Hashes: [][]byte{[]byte(h)}})}).Versions)
	}
	if got := find("old"); len(got) != 0 {
		t.Errorf("old rows still match: %v", got)
	}
	if got := find("new"); !slices.Equal(got, []string{"r1"}) {
		t.Errorf("new rows: %v", got)
	}
	err := s.Update(ctx, func(tx storage.Tx) error { return tx.ReplaceIndex(ctx, "Observation", "nope", 1, nil) })
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown resource: %v, want ErrNotFound", err)
	}
}

// testHistoryOwners: HistoryQuery.Owners narrows history to (or away
// from) a set of owners.
func testHistoryOwners(t *testing.T, s storage.Store) {
	put(t, s, ver("Observation", "h1", 1, "Patient/a", at(1)))
	put(t, s, ver("Observation", "h2", 1, "Patient/b", at(2)))
	put(t, s, ver("Observation", "h3", 1, "org", at(3)))
	for _, tc := range []struct {
		name string
		set  *storage.OwnerSet
		want []string
	}{
		{"all", nil, []string{"h3", "h2", "h1"}},
		{"in", &storage.OwnerSet{In: []ident.Owner{"Patient/a", "org"}}, []string{"h3", "h1"}},
		{"none", &storage.OwnerSet{}, nil},
		{"except", &storage.OwnerSet{In: []ident.Owner{"Patient/a"}, Except: true}, []string{"h3", "h2"}},
		{"except none", &storage.OwnerSet{Except: true}, []string{"h3", "h2", "h1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs, err := s.History(t.Context(), storage.HistoryQuery{Type: "Observation", Count: 10, Owners: tc.set})
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(vs); !slices.Equal(got, tc.want) {
				t.Errorf("history %v, want %v", got, tc.want)
			}
		})
	}
}
