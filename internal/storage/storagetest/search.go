package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/phivault/phivault/internal/storage"
)

// searchFixture stores the resources the search tests query:
//
//	o1 code=a        date [100,199]  updated at(1)
//	o2 code=b        date [200,299]  updated at(2)
//	o3 code=a,b      date [150,250]  updated at(3)
//	o4 code=c        (no date)       updated at(4)
//	o5 (no code)     date [300,399]  updated at(5)
//	o6 code=a, deleted; Patient p1 code=a (other type)
func searchFixture(t *testing.T, s storage.Store) {
	t.Helper()
	put(t, s, ver("Observation", "o1", 1, "Patient/p1", at(1)), tok("code", "a"), date("date", 100, 199))
	put(t, s, ver("Observation", "o2", 1, "Patient/p1", at(2)), tok("code", "b"), date("date", 200, 299))
	put(t, s, ver("Observation", "o3", 1, "Patient/p2", at(3)), tok("code", "a"), tok("code", "b"), date("date", 150, 250))
	put(t, s, ver("Observation", "o4", 1, "Patient/p2", at(4)), tok("code", "c"))
	put(t, s, ver("Observation", "o5", 1, "org", at(5)), date("date", 300, 399))
	put(t, s, ver("Observation", "o6", 1, "org", at(6)), tok("code", "a"))
	put(t, s, storage.Version{Type: "Observation", ID: "o6", Version: 2, Owner: "org", LastUpdated: at(7), Deleted: true})
	put(t, s, ver("Patient", "p1", 1, "Patient/p1", at(0)), tok("code", "a"), date("date", 100, 199))
}

func one(c storage.Cond) []storage.Clause { return []storage.Clause{{Any: []storage.Cond{c}}} }

func codeIs(vals ...string) storage.Cond {
	c := storage.Cond{Kind: storage.CondHash, Param: "code"}
	for _, v := range vals {
		c.Hashes = append(c.Hashes, hash(v))
	}
	return c
}

func dateCond(op storage.DateOp, lo, hi int64) storage.Cond {
	return storage.Cond{Kind: storage.CondDate, Param: "date", Op: op, Lo: lo, Hi: hi}
}

func negate(c storage.Cond) storage.Cond { c.Negate = true; return c }

func all(cs ...storage.Cond) storage.Cond { return storage.Cond{Kind: storage.CondAll, All: cs} }

func hasParam(p string) storage.Cond { return storage.Cond{Kind: storage.CondMissing, Param: p} }

func testSearchConditions(t *testing.T, s storage.Store) {
	searchFixture(t, s)
	us := func(sec int) int64 { return at(sec).UnixMicro() }
	for _, tc := range []struct {
		name    string
		clauses []storage.Clause
		want    []string
	}{
		{"no clauses", nil, []string{"o1", "o2", "o3", "o4", "o5"}},
		{"hash", one(codeIs("a")), []string{"o1", "o3"}},
		{"hash any of", one(codeIs("a", "b")), []string{"o1", "o2", "o3"}},
		{"hash unknown", one(codeIs("zzz")), []string{}},
		{"hash none given", one(codeIs()), []string{}},
		{"hash none given negated", one(negate(codeIs())), []string{"o1", "o2", "o3", "o4", "o5"}},
		{"hash wrong param", one(storage.Cond{Kind: storage.CondHash, Param: "status", Hashes: [][]byte{hash("a")}}), []string{}},
		{"or within clause", []storage.Clause{{Any: []storage.Cond{codeIs("a"), codeIs("c")}}}, []string{"o1", "o3", "o4"}},
		{"and across clauses", []storage.Clause{{Any: []storage.Cond{codeIs("a")}}, {Any: []storage.Cond{codeIs("b")}}}, []string{"o3"}},
		{"and with or", []storage.Clause{{Any: []storage.Cond{codeIs("a"), codeIs("c")}}, {Any: []storage.Cond{dateCond(storage.OpLt, 200, 299)}}}, []string{"o1", "o3"}},
		{"not", one(negate(codeIs("a"))), []string{"o2", "o4", "o5"}},
		{"not any of", one(negate(codeIs("a", "b"))), []string{"o4", "o5"}},
		// Conjunctions (CondAll), alone, negated, ORed, and after a
		// driving clause (correlated).
		{"all", one(all(codeIs("a"), dateCond(storage.OpEq, 100, 199))), []string{"o1"}},
		{"all negated", one(negate(all(codeIs("a"), dateCond(storage.OpEq, 100, 199)))), []string{"o2", "o3", "o4", "o5"}},
		{"all or hash", []storage.Clause{{Any: []storage.Cond{all(codeIs("a"), dateCond(storage.OpEq, 100, 199)), codeIs("c")}}}, []string{"o1", "o4"}},
		{"all of missing", one(all(hasParam("code"), hasParam("date"))), []string{"o1", "o2", "o3"}},
		{"all of missing negated", one(negate(all(hasParam("code"), hasParam("date")))), []string{"o4", "o5"}},
		{"all after a driving clause", []storage.Clause{{Any: []storage.Cond{codeIs("a")}}, {Any: []storage.Cond{all(codeIs("b"), hasParam("date"))}}}, []string{"o3"}},
		{"all with a negated part", one(all(codeIs("a"), negate(codeIs("b")))), []string{"o1"}},
		{"missing true", one(storage.Cond{Kind: storage.CondMissing, Param: "code", Missing: true}), []string{"o5"}},
		{"missing false", one(storage.Cond{Kind: storage.CondMissing, Param: "code", Missing: false}), []string{"o1", "o2", "o3", "o4"}},
		{"missing true negated", one(storage.Cond{Kind: storage.CondMissing, Param: "date", Missing: true, Negate: true}), []string{"o1", "o2", "o3", "o5"}},
		{"id", one(storage.Cond{Kind: storage.CondID, IDs: []string{"o1", "o4", "o6", "p1"}}), []string{"o1", "o4"}},
		{"id negated", one(storage.Cond{Kind: storage.CondID, IDs: []string{"o1", "o4"}, Negate: true}), []string{"o2", "o3", "o5"}},
		{"id none given", one(storage.Cond{Kind: storage.CondID}), []string{}},
		// Date prefixes against the search range [200, 299].
		{"date eq", one(dateCond(storage.OpEq, 200, 299)), []string{"o2"}},
		{"date ne", one(dateCond(storage.OpNe, 200, 299)), []string{"o1", "o3", "o5"}},
		{"date gt", one(dateCond(storage.OpGt, 200, 299)), []string{"o5"}},
		{"date lt", one(dateCond(storage.OpLt, 200, 299)), []string{"o1", "o3"}},
		{"date ge", one(dateCond(storage.OpGe, 200, 299)), []string{"o2", "o3", "o5"}},
		{"date le", one(dateCond(storage.OpLe, 200, 299)), []string{"o1", "o2", "o3"}},
		{"date eq negated", one(negate(dateCond(storage.OpEq, 200, 299))), []string{"o1", "o3", "o4", "o5"}},
		{"date sa", one(dateCond(storage.OpSa, 200, 299)), []string{"o5"}},
		{"date eb", one(dateCond(storage.OpEb, 200, 299)), []string{"o1"}},
		{"date ap", one(dateCond(storage.OpAp, 200, 299)), []string{"o2", "o3"}},
		{"date ap touching ends", one(dateCond(storage.OpAp, 199, 300)), []string{"o1", "o2", "o3", "o5"}},
		{"date sa at hi", one(dateCond(storage.OpSa, 299, 299)), []string{"o5"}},
		{"date eb at lo", one(dateCond(storage.OpEb, 200, 200)), []string{"o1"}},
		{"date eb one short", one(dateCond(storage.OpEb, 199, 199)), []string{}},
		// Boundaries: inclusive ends.
		{"date eq exact range", one(dateCond(storage.OpEq, 100, 199)), []string{"o1"}},
		{"date eq one short", one(dateCond(storage.OpEq, 101, 199)), []string{}},
		{"date ge at hi", one(dateCond(storage.OpGe, 399, 399)), []string{"o5"}},
		{"date gt at hi", one(dateCond(storage.OpGt, 399, 399)), []string{}},
		{"date le at lo", one(dateCond(storage.OpLe, 100, 100)), []string{"o1"}},
		{"date lt at lo", one(dateCond(storage.OpLt, 100, 100)), []string{}},
		// _lastUpdated is a point: o3 was updated at(3).
		{"lastUpdated eq", one(storage.Cond{Kind: storage.CondLastUpdated, Op: storage.OpEq, Lo: us(3), Hi: us(3)}), []string{"o3"}},
		{"lastUpdated ne", one(storage.Cond{Kind: storage.CondLastUpdated, Op: storage.OpNe, Lo: us(3), Hi: us(3)}), []string{"o1", "o2", "o4", "o5"}},
		{"lastUpdated gt", one(storage.Cond{Kind: storage.CondLastUpdated, Op: storage.OpGt, Lo: us(3), Hi: us(3)}), []string{"o4", "o5"}},
		{"lastUpdated ge", one(storage.Cond{Kind: storage.CondLastUpdated, Op: storage.OpGe, Lo: us(3), Hi: us(4) - 1}), []string{"o3", "o4", "o5"}},
		{"lastUpdated lt", one(storage.Cond{Kind: storage.CondLastUpdated, Op: storage.OpLt, Lo: us(3), Hi: us(3)}), []string{"o1", "o2"}},
		{"lastUpdated le", one(storage.Cond{Kind: storage.CondLastUpdated, Op: storage.OpLe, Lo: us(2), Hi: us(3)}), []string{"o1", "o2", "o3"}},
		{"lastUpdated sa", one(storage.Cond{Kind: storage.CondLastUpdated, Op: storage.OpSa, Lo: us(3), Hi: us(3)}), []string{"o4", "o5"}},
		{"lastUpdated eb", one(storage.Cond{Kind: storage.CondLastUpdated, Op: storage.OpEb, Lo: us(3), Hi: us(3)}), []string{"o1", "o2"}},
		{"lastUpdated ap", one(storage.Cond{Kind: storage.CondLastUpdated, Op: storage.OpAp, Lo: us(2), Hi: us(3)}), []string{"o2", "o3"}},
		{"lastUpdated negated", one(storage.Cond{Kind: storage.CondLastUpdated, Op: storage.OpLe, Lo: us(2), Hi: us(3), Negate: true}), []string{"o4", "o5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := search(t, s, storage.Query{Type: "Observation", Clauses: tc.clauses, Count: 100, Total: true, Sort: []storage.Sort{{Key: storage.SortID}}})
			if got := ids(res.Versions); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if res.Total != int64(len(tc.want)) {
				t.Errorf("total %d, want %d", res.Total, len(tc.want))
			}
		})
	}
}

func testSearchSortPaging(t *testing.T, s storage.Store) {
	searchFixture(t, s)
	for _, tc := range []struct {
		name string
		sort []storage.Sort
		want []string
	}{
		{"default", nil, []string{"o1", "o2", "o3", "o4", "o5"}},
		{"id asc", []storage.Sort{{Key: storage.SortID}}, []string{"o1", "o2", "o3", "o4", "o5"}},
		{"id desc", []storage.Sort{{Key: storage.SortID, Desc: true}}, []string{"o5", "o4", "o3", "o2", "o1"}},
		{"lastUpdated asc", []storage.Sort{{Key: storage.SortLastUpdated}}, []string{"o1", "o2", "o3", "o4", "o5"}},
		{"lastUpdated desc", []storage.Sort{{Key: storage.SortLastUpdated, Desc: true}}, []string{"o5", "o4", "o3", "o2", "o1"}},
		{"date asc, missing last", []storage.Sort{{Key: storage.SortDate, Param: "date"}}, []string{"o1", "o3", "o2", "o5", "o4"}},
		{"date desc, missing last", []storage.Sort{{Key: storage.SortDate, Param: "date", Desc: true}}, []string{"o5", "o2", "o3", "o1", "o4"}},
		{"unknown date param ties broken by id", []storage.Sort{{Key: storage.SortDate, Param: "nope", Desc: true}}, []string{"o1", "o2", "o3", "o4", "o5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := search(t, s, storage.Query{Type: "Observation", Sort: tc.sort, Count: 100})
			if got := ids(res.Versions); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if res.Total != -1 {
				t.Errorf("Total = %d without Query.Total, want -1", res.Total)
			}
			// Pages of 2 concatenate to the full order.
			var paged []string
			for off := 0; off < 6; off += 2 {
				res := search(t, s, storage.Query{Type: "Observation", Sort: tc.sort, Count: 2, Offset: off, Total: true})
				if res.Total != 5 {
					t.Errorf("page at %d: total %d, want 5", off, res.Total)
				}
				paged = append(paged, ids(res.Versions)...)
			}
			if !slices.Equal(paged, tc.want) {
				t.Errorf("paged %v, want %v", paged, tc.want)
			}
		})
	}
	// Equal sort keys: paging is still stable (tie-broken by id).
	for i := range 7 {
		put(t, s, ver("Encounter", fmt.Sprintf("e%d", 6-i), 1, "org", at(100)))
	}
	var paged []string
	for off := 0; off < 7; off += 3 {
		paged = append(paged, ids(search(t, s, storage.Query{Type: "Encounter", Count: 3, Offset: off}).Versions)...)
	}
	if want := []string{"e0", "e1", "e2", "e3", "e4", "e5", "e6"}; !slices.Equal(paged, want) {
		t.Errorf("ties: paged %v, want %v", paged, want)
	}
	res := search(t, s, storage.Query{Type: "Observation", Total: true})
	if res.Total != 5 || len(res.Versions) != 0 {
		t.Errorf("count-only search: total %d, %d versions", res.Total, len(res.Versions))
	}
}

func testSearchInTx(t *testing.T, s storage.Store) {
	ctx := t.Context()
	err := s.Update(ctx, func(tx storage.Tx) error {
		if err := tx.Put(ctx, ver("Observation", "o1", 1, "org", at(0)), []storage.IndexRow{tok("code", "a")}); err != nil {
			return err
		}
		res, err := tx.Search(ctx, storage.Query{Type: "Observation", Clauses: one(codeIs("a")), Count: 10, Total: true})
		if err != nil {
			return err
		}
		if !slices.Equal(ids(res.Versions), []string{"o1"}) || res.Total != 1 {
			return fmt.Errorf("tx search does not see its own write: %v %d", ids(res.Versions), res.Total)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testSearchLimits(t *testing.T, s storage.Store) {
	many := func(n int) []storage.Clause {
		cs := make([]storage.Clause, n)
		for i := range cs {
			cs[i] = storage.Clause{Any: []storage.Cond{codeIs("a")}}
		}
		return cs
	}
	bigHash := codeIs()
	for i := range storage.MaxValues + 1 {
		bigHash.Hashes = append(bigHash.Hashes, hash(fmt.Sprint(i)))
	}
	wide := storage.Clause{}
	for range storage.MaxConds + 1 {
		wide.Any = append(wide.Any, codeIs("a"))
	}
	for _, tc := range []struct {
		name string
		q    storage.Query
	}{
		{"clauses", storage.Query{Type: "Observation", Count: 1, Clauses: many(storage.MaxClauses + 1)}},
		{"conditions", storage.Query{Type: "Observation", Count: 1, Clauses: []storage.Clause{wide}}},
		{"values", storage.Query{Type: "Observation", Count: 1, Clauses: one(bigHash)}},
		{"values inside a conjunction", storage.Query{Type: "Observation", Count: 1, Clauses: one(all(bigHash, hasParam("date")))}},
		{"conditions inside a conjunction", storage.Query{Type: "Observation", Count: 1, Clauses: one(storage.Cond{Kind: storage.CondAll, All: wide.Any})}},
		{"sorts", storage.Query{Type: "Observation", Count: 1, Sort: make([]storage.Sort, storage.MaxSorts+1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Search(t.Context(), tc.q); !errors.Is(err, storage.ErrTooComplex) {
				t.Errorf("err = %v, want ErrTooComplex", err)
			}
		})
	}
	// At the limits the query runs.
	ok := storage.Query{Type: "Observation", Count: 1, Clauses: many(storage.MaxClauses)}
	if _, err := s.Search(t.Context(), ok); err != nil {
		t.Errorf("query at MaxClauses: %v", err)
	}
	bigHash.Hashes = bigHash.Hashes[:storage.MaxValues]
	if _, err := s.Search(t.Context(), storage.Query{Type: "Observation", Count: 1, Clauses: one(bigHash)}); err != nil {
		t.Errorf("query at MaxValues: %v", err)
	}
	if _, err := s.Search(t.Context(), storage.Query{Type: "Observation", Count: 1, Clauses: one(storage.Cond{Kind: 99})}); err == nil {
		t.Error("unknown condition kind accepted")
	}
	for _, c := range []storage.Cond{all(), all(all(codeIs("a"))), all(storage.Cond{Kind: storage.CondID, IDs: []string{"o1"}})} {
		if _, err := s.Search(t.Context(), storage.Query{Type: "Observation", Count: 1, Clauses: one(c)}); err == nil {
			t.Errorf("malformed conjunction %+v accepted", c)
		}
	}
}

func testIndexReplaced(t *testing.T, s storage.Store) {
	put(t, s, ver("Observation", "o1", 1, "org", at(0)), tok("code", "a"), date("date", 1, 2))
	put(t, s, ver("Observation", "o1", 2, "org", at(1)), tok("code", "b"))
	for _, tc := range []struct {
		c    storage.Cond
		want []string
	}{
		{codeIs("a"), []string{}},
		{codeIs("b"), []string{"o1"}},
		{dateCond(storage.OpLe, 0, 10), []string{}},
		{storage.Cond{Kind: storage.CondMissing, Param: "date", Missing: true}, []string{"o1"}},
	} {
		res := search(t, s, storage.Query{Type: "Observation", Clauses: one(tc.c), Count: 10})
		if got := ids(res.Versions); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: got %v, want %v", tc.c, got, tc.want)
		}
	}
}
