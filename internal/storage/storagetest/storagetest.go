package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// Open returns a fresh, empty, migrated store; the callee registers its
// Close with t.Cleanup.
type Open func(t *testing.T) storage.Store

// Run runs the whole suite, each case on a store of its own.
func Run(t *testing.T, open func(t *testing.T) storage.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"PutCurrentVersionOf", testPutCurrent},
		{"VersionConflict", testVersionConflict},
		{"DeleteMarker", testDeleteMarker},
		{"History", testHistory},
		{"SearchConditions", testSearchConditions},
		{"SearchSortPaging", testSearchSortPaging},
		{"SearchInTx", testSearchInTx},
		{"SearchLimits", testSearchLimits},
		{"IndexReplacedOnUpdate", testIndexReplaced},
		{"Keys", testKeys},
		{"RewriteCiphertext", testRewriteCiphertext},
		{"Shred", testShred},
		{"Audit", testAudit},
		{"ScanVersions", testScanVersions},
		{"Counts", testCounts},
		{"UpdateRollback", testUpdateRollback},
		{"ContextCancelled", testContextCancelled},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"ConcurrentCreates", testConcurrentCreates},
		{"HostileValues", testHostileValues},
		{"Lock", testLock},
		{"SearchOwner", testSearchOwner},
		{"ReplaceIndex", testReplaceIndex},
		{"HistoryOwners", testHistoryOwners},
		{"JointOwners", testJointOwners},
		{"Types", testTypes},
		{"HistoryCurrent", testHistoryCurrent},
		{"HistoryAt", testHistoryAt},
		{"LedgerScans", testLedgerScans},
		{"Changes", testChanges},
		{"Monitor", testMonitor},
		{"Backups", testBackups},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, open(t))
		})
	}
}

// base is a fixed clock origin with microsecond precision.
var base = time.Date(2024, 3, 1, 12, 0, 0, 123456000, time.UTC)

func at(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }

func ver(typ, id string, v int64, owner ident.Owner, t time.Time) storage.Version {
	return storage.Version{
		Type: typ, ID: id, Version: v, Owner: owner, LastUpdated: t,
		Ciphertext: fmt.Appendf(nil, "sealed:%s/%s/%d\x00\xff", typ, id, v),
	}
}

func hash(s string) []byte { return []byte("h\x00" + s) }

func tok(param, value string) storage.IndexRow {
	return storage.IndexRow{Param: param, Hash: hash(value)}
}

func date(param string, lo, hi int64) storage.IndexRow {
	return storage.IndexRow{Param: param, Lo: lo, Hi: hi, IsDate: true}
}

// put stores versions in one Update and fails the test on error.
func put(t *testing.T, s storage.Store, v storage.Version, idx ...storage.IndexRow) {
	t.Helper()
	if err := s.Update(t.Context(), func(tx storage.Tx) error {
		return tx.Put(t.Context(), v, idx)
	}); err != nil {
		t.Fatalf("put %s/%s v%d: %v", v.Type, v.ID, v.Version, err)
	}
}

func tryPut(t *testing.T, s storage.Store, v storage.Version, idx ...storage.IndexRow) error {
	t.Helper()
	return s.Update(t.Context(), func(tx storage.Tx) error {
		return tx.Put(t.Context(), v, idx)
	})
}

func equalVersion(t *testing.T, got, want storage.Version) {
	t.Helper()
	if got.Type != want.Type || got.ID != want.ID || got.Version != want.Version ||
		got.Owner != want.Owner || got.Deleted != want.Deleted ||
		!got.LastUpdated.Equal(want.LastUpdated) || got.LastUpdated.Location() != time.UTC ||
		!bytes.Equal(got.Ciphertext, want.Ciphertext) || (got.Ciphertext == nil) != (want.Ciphertext == nil) {
		t.Errorf("version mismatch:\n got %+v\nwant %+v", got, want)
	}
}

func ids(vs []storage.Version) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.ID
	}
	return out
}

func refs(vs []storage.Version) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprintf("%s/%s/%d", v.Type, v.ID, v.Version)
	}
	return out
}

func search(t *testing.T, s storage.Reader, q storage.Query) storage.Result {
	t.Helper()
	res, err := s.Search(t.Context(), q)
	if err != nil {
		t.Fatalf("search: %v", err)
	}
	return res
}

func testPutCurrent(t *testing.T, s storage.Store) {
	ctx := t.Context()
	if _, err := s.Current(ctx, "Patient", "p1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Current of a missing resource: err = %v, want ErrNotFound", err)
	}
	v1 := ver("Patient", "p1", 1, "Patient/p1", at(0))
	v2 := ver("Patient", "p1", 2, "Patient/p1", at(1))
	put(t, s, v1, tok("name", "ann"))
	put(t, s, v2, tok("name", "anne"))

	got, err := s.Current(ctx, "Patient", "p1")
	if err != nil {
		t.Fatal(err)
	}
	equalVersion(t, got, v2)
	old, err := s.VersionOf(ctx, "Patient", "p1", 1)
	if err != nil {
		t.Fatal(err)
	}
	equalVersion(t, old, v1)
	for _, v := range []int64{0, 3} {
		if _, err := s.VersionOf(ctx, "Patient", "p1", v); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("VersionOf v%d: err = %v, want ErrNotFound", v, err)
		}
	}
	if _, err := s.Current(ctx, "Observation", "p1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Current under another type: err = %v, want ErrNotFound", err)
	}
	// The transaction sees its own writes.
	err = s.Update(ctx, func(tx storage.Tx) error {
		if err := tx.Put(ctx, ver("Patient", "p2", 1, "Patient/p2", at(2)), nil); err != nil {
			return err
		}
		v, err := tx.Current(ctx, "Patient", "p2")
		if err != nil || v.Version != 1 {
			return fmt.Errorf("own write not visible: %v %v", v.Version, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testVersionConflict(t *testing.T, s storage.Store) {
	ctx := t.Context()
	put(t, s, ver("Patient", "p1", 1, "Patient/p1", at(0)), tok("name", "ann"))
	for _, tc := range []struct {
		name string
		v    storage.Version
	}{
		{"create again", ver("Patient", "p1", 1, "Patient/p1", at(1))},
		{"skip a version", ver("Patient", "p1", 3, "Patient/p1", at(1))},
		{"update a missing resource", ver("Patient", "p9", 2, "Patient/p9", at(1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tryPut(t, s, tc.v, tok("name", "mallory"))
			if !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("err = %v, want ErrConflict", err)
			}
		})
	}
	cur, err := s.Current(ctx, "Patient", "p1")
	if err != nil || cur.Version != 1 || !bytes.Equal(cur.Ciphertext, ver("Patient", "p1", 1, "", at(0)).Ciphertext) {
		t.Fatalf("after conflicts: %+v %v", cur, err)
	}
	for _, v := range []int64{2, 3} {
		if _, err := s.VersionOf(ctx, "Patient", "p1", v); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("VersionOf v%d after conflict: %v, want ErrNotFound", v, err)
		}
	}
	if _, err := s.Current(ctx, "Patient", "p9"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("conflicting create wrote p9: %v", err)
	}
	res := search(t, s, storage.Query{Type: "Patient", Count: 10, Clauses: []storage.Clause{{Any: []storage.Cond{{Kind: storage.CondHash, Param: "name", Hashes: [][]byte{hash("mallory")}}}}}})
	if len(res.Versions) != 0 {
		t.Errorf("index rows of a conflicting put were written: %v", ids(res.Versions))
	}

	// A conflict leaves the transaction usable: fn may handle it.
	err = s.Update(ctx, func(tx storage.Tx) error {
		if err := tx.Put(ctx, ver("Patient", "p1", 1, "Patient/p1", at(2)), nil); !errors.Is(err, storage.ErrConflict) {
			return fmt.Errorf("want ErrConflict, got %v", err)
		}
		return tx.Put(ctx, ver("Patient", "p2", 1, "Patient/p2", at(2)), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Current(ctx, "Patient", "p2"); err != nil {
		t.Errorf("write after a handled conflict was lost: %v", err)
	}
}

func testDeleteMarker(t *testing.T, s storage.Store) {
	ctx := t.Context()
	put(t, s, ver("Observation", "o1", 1, "Patient/p1", at(0)), tok("code", "a"))
	del := storage.Version{Type: "Observation", ID: "o1", Version: 2, Owner: "Patient/p1", LastUpdated: at(1), Deleted: true}
	put(t, s, del, tok("code", "a"))
	got, err := s.Current(ctx, "Observation", "o1")
	if err != nil {
		t.Fatal(err)
	}
	equalVersion(t, got, del)
	if v, err := s.VersionOf(ctx, "Observation", "o1", 1); err != nil || v.Ciphertext == nil {
		t.Errorf("history lost on delete: %+v %v", v, err)
	}
	q := storage.Query{Type: "Observation", Count: 10, Total: true}
	if res := search(t, s, q); len(res.Versions) != 0 || res.Total != 0 {
		t.Errorf("deleted resource found by search: %v total %d", ids(res.Versions), res.Total)
	}
	q.Clauses = []storage.Clause{{Any: []storage.Cond{{Kind: storage.CondHash, Param: "code", Hashes: [][]byte{hash("a")}}}}}
	if res := search(t, s, q); len(res.Versions) != 0 {
		t.Errorf("deleted resource found by its index: %v", ids(res.Versions))
	}
	if c, _ := s.Counts(ctx); c["Observation"] != 0 {
		t.Errorf("Counts includes a deleted resource: %v", c)
	}
	// Re-create after delete continues the version sequence.
	put(t, s, ver("Observation", "o1", 3, "Patient/p1", at(2)), tok("code", "b"))
	q.Clauses[0].Any[0].Hashes = [][]byte{hash("b")}
	if res := search(t, s, q); !slices.Equal(ids(res.Versions), []string{"o1"}) {
		t.Errorf("re-created resource not found: %v", ids(res.Versions))
	}
}

func testHistory(t *testing.T, s storage.Store) {
	ctx := t.Context()
	put(t, s, ver("Patient", "p1", 1, "Patient/p1", at(0)))
	put(t, s, ver("Observation", "o1", 1, "Patient/p1", at(1)))
	put(t, s, ver("Patient", "p1", 2, "Patient/p1", at(2)))
	put(t, s, ver("Observation", "o2", 1, "Patient/p1", at(3)))
	put(t, s, storage.Version{Type: "Observation", ID: "o1", Version: 2, Owner: "Patient/p1", LastUpdated: at(4), Deleted: true})

	for _, tc := range []struct {
		name string
		q    storage.HistoryQuery
		want []string
	}{
		{"system", storage.HistoryQuery{Count: 10}, []string{"Observation/o1/2", "Observation/o2/1", "Patient/p1/2", "Observation/o1/1", "Patient/p1/1"}},
		{"type", storage.HistoryQuery{Type: "Observation", Count: 10}, []string{"Observation/o1/2", "Observation/o2/1", "Observation/o1/1"}},
		{"instance", storage.HistoryQuery{Type: "Observation", ID: "o1", Count: 10}, []string{"Observation/o1/2", "Observation/o1/1"}},
		{"since is inclusive", storage.HistoryQuery{Since: at(2), Count: 10}, []string{"Observation/o1/2", "Observation/o2/1", "Patient/p1/2"}},
		{"count", storage.HistoryQuery{Count: 2}, []string{"Observation/o1/2", "Observation/o2/1"}},
		{"offset", storage.HistoryQuery{Count: 2, Offset: 2}, []string{"Patient/p1/2", "Observation/o1/1"}},
		{"past the end", storage.HistoryQuery{Count: 2, Offset: 5}, []string{}},
		{"unknown instance", storage.HistoryQuery{Type: "Patient", ID: "nope", Count: 2}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs, err := s.History(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := refs(vs); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	vs, _ := s.History(ctx, storage.HistoryQuery{Type: "Observation", ID: "o1", Count: 1})
	if len(vs) != 1 || !vs[0].Deleted || vs[0].Ciphertext != nil {
		t.Errorf("delete marker in history: %+v", vs)
	}
	if _, err := s.History(ctx, storage.HistoryQuery{}); err == nil {
		t.Error("History with Count 0 succeeded")
	}
}

func testKeys(t *testing.T, s storage.Store) {
	ctx := t.Context()
	if _, err := s.Key(ctx, "Patient/p1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	k1 := storage.KeyRecord{Owner: "Patient/p1", Wrapped: []byte("wrapped-1\x00"), KEKID: 0xfffffffe, Created: at(0)}
	k0 := storage.KeyRecord{Owner: "org", Wrapped: []byte("wrapped-org"), KEKID: 7, Created: at(1)}
	for _, k := range []storage.KeyRecord{k1, k0} {
		if err := s.Update(ctx, func(tx storage.Tx) error { return tx.PutKey(ctx, k) }); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Key(ctx, "Patient/p1")
	if err != nil || !reflect.DeepEqual(got, k1) {
		t.Fatalf("Key = %+v, %v; want %+v", got, err, k1)
	}
	dup := k1
	dup.Wrapped = []byte("other")
	if err := s.Update(ctx, func(tx storage.Tx) error { return tx.PutKey(ctx, dup) }); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("duplicate PutKey: %v, want ErrConflict", err)
	}
	rot := storage.KeyRecord{Owner: "Patient/p1", Wrapped: []byte("wrapped-2"), KEKID: 3}
	err = s.Update(ctx, func(tx storage.Tx) error {
		if err := tx.ReplaceKey(ctx, rot); err != nil {
			return err
		}
		k, err := tx.Key(ctx, "Patient/p1")
		if err != nil || !bytes.Equal(k.Wrapped, rot.Wrapped) {
			return fmt.Errorf("tx does not see its own ReplaceKey: %+v %v", k, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = s.Key(ctx, "Patient/p1")
	if want := (storage.KeyRecord{Owner: "Patient/p1", Wrapped: rot.Wrapped, KEKID: 3, Created: k1.Created}); !reflect.DeepEqual(got, want) {
		t.Errorf("after ReplaceKey: %+v, want %+v", got, want)
	}
	if err := s.Update(ctx, func(tx storage.Tx) error {
		return tx.ReplaceKey(ctx, storage.KeyRecord{Owner: "Patient/none", Wrapped: []byte("x")})
	}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ReplaceKey of a missing owner: %v, want ErrNotFound", err)
	}
	var owners []ident.Owner
	if err := s.ScanKeys(ctx, func(k storage.KeyRecord) error { owners = append(owners, k.Owner); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []ident.Owner{"Patient/p1", "org"}; !slices.Equal(owners, want) {
		t.Errorf("ScanKeys order %v, want %v", owners, want)
	}
}

func testRewriteCiphertext(t *testing.T, s storage.Store) {
	ctx := t.Context()
	put(t, s, ver("Patient", "p1", 1, "Patient/p1", at(0)))
	put(t, s, ver("Patient", "p1", 2, "Patient/p1", at(1)))
	err := s.Update(ctx, func(tx storage.Tx) error {
		return tx.RewriteCiphertext(ctx, storage.VersionRef{Type: "Patient", ID: "p1", Version: 1}, []byte("resealed"))
	})
	if err != nil {
		t.Fatal(err)
	}
	v1, _ := s.VersionOf(ctx, "Patient", "p1", 1)
	v2, _ := s.VersionOf(ctx, "Patient", "p1", 2)
	if string(v1.Ciphertext) != "resealed" || v1.Version != 1 || !v1.LastUpdated.Equal(at(0)) {
		t.Errorf("rewritten version: %+v", v1)
	}
	if !bytes.Equal(v2.Ciphertext, ver("Patient", "p1", 2, "", at(1)).Ciphertext) {
		t.Errorf("other version changed: %q", v2.Ciphertext)
	}
	err = s.Update(ctx, func(tx storage.Tx) error {
		return tx.RewriteCiphertext(ctx, storage.VersionRef{Type: "Patient", ID: "p1", Version: 3}, []byte("x"))
	})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("rewrite of a missing version: %v, want ErrNotFound", err)
	}
}

func testAudit(t *testing.T, s storage.Store) {
	ctx := t.Context()
	rec := func(i int) storage.AuditRecord {
		return storage.AuditRecord{Time: at(i), Body: fmt.Appendf(nil, "event-%d\x00", i)}
	}
	if err := s.AppendAudit(ctx, rec(1), rec(2)); err != nil {
		t.Fatal(err)
	}
	err := s.Update(ctx, func(tx storage.Tx) error {
		if err := tx.Put(ctx, ver("Patient", "p1", 1, "Patient/p1", at(3)), nil); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, rec(3))
	})
	if err != nil {
		t.Fatal(err)
	}
	// Rolled back with its write: no audit record either.
	boom := errors.New("boom")
	if err := s.Update(ctx, func(tx storage.Tx) error {
		if err := tx.AppendAudit(ctx, rec(99)); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want boom", err)
	}
	batch := make([]storage.AuditRecord, 450) // more than one insert chunk and one scan batch
	for i := range batch {
		batch[i] = rec(4 + i)
	}
	if err := s.AppendAudit(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	var got []storage.AuditRecord
	if err := s.ScanAudit(ctx, 0, func(seq int64, r storage.AuditRecord) error {
		seqs = append(seqs, seq)
		got = append(got, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 453 {
		t.Fatalf("ScanAudit returned %d records, want 453", len(got))
	}
	for i, r := range got {
		want := rec(i + 1)
		if !r.Time.Equal(want.Time) || !bytes.Equal(r.Body, want.Body) {
			t.Fatalf("record %d = %q at %v, want %q", i, r.Body, r.Time, want.Body)
		}
		if i > 0 && seqs[i] <= seqs[i-1] {
			t.Fatalf("sequence not increasing at %d: %d after %d", i, seqs[i], seqs[i-1])
		}
	}
	var after []int64
	s.ScanAudit(ctx, seqs[1], func(seq int64, _ storage.AuditRecord) error { after = append(after, seq); return nil })
	if len(after) != 451 || after[0] != seqs[2] {
		t.Errorf("ScanAudit after %d: %d records starting %v", seqs[1], len(after), after[:min(1, len(after))])
	}
	stop := errors.New("stop")
	calls := 0
	if err := s.ScanAudit(ctx, 0, func(int64, storage.AuditRecord) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("ScanAudit did not stop at fn's error: %v after %d calls", err, calls)
	}
}

func testScanVersions(t *testing.T, s storage.Store) {
	ctx := t.Context()
	var want []string
	err := s.Update(ctx, func(tx storage.Tx) error {
		for i := range 150 {
			id := fmt.Sprintf("r%03d", i)
			for v := int64(1); v <= 2; v++ {
				if err := tx.Put(ctx, ver("Observation", id, v, "org", at(i)), nil); err != nil {
					return err
				}
			}
		}
		return tx.Put(ctx, ver("Patient", "a", 1, "org", at(0)), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 150 {
		want = append(want, fmt.Sprintf("Observation/r%03d/1", i), fmt.Sprintf("Observation/r%03d/2", i))
	}
	want = append(want, "Patient/a/1")

	scan := func(after storage.VersionRef) []string {
		var got []string
		if err := s.ScanVersions(ctx, after, func(v storage.Version) error {
			if v.Ciphertext == nil {
				return fmt.Errorf("no ciphertext on %s/%s", v.Type, v.ID)
			}
			got = append(got, fmt.Sprintf("%s/%s/%d", v.Type, v.ID, v.Version))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := scan(storage.VersionRef{}); !slices.Equal(got, want) {
		t.Fatalf("full scan: %d versions, want %d", len(got), len(want))
	}
	for _, tc := range []struct {
		after storage.VersionRef
		from  int
	}{
		{storage.VersionRef{Type: "Observation", ID: "r010", Version: 1}, 21},
		{storage.VersionRef{Type: "Observation", ID: "r010", Version: 2}, 22},
		{storage.VersionRef{Type: "Observation", ID: "r010"}, 20},
		{storage.VersionRef{Type: "Observation", ID: "r999"}, 300},
		{storage.VersionRef{Type: "Patient", ID: "a", Version: 1}, 301},
	} {
		if got := scan(tc.after); !slices.Equal(got, want[tc.from:]) {
			t.Errorf("resume after %+v: got %d versions starting %v, want from %d", tc.after, len(got), got[:min(1, len(got))], tc.from)
		}
	}
}

func testCounts(t *testing.T, s storage.Store) {
	ctx := t.Context()
	if c, err := s.Counts(ctx); err != nil || len(c) != 0 {
		t.Fatalf("empty store Counts: %v %v", c, err)
	}
	put(t, s, ver("Patient", "p1", 1, "org", at(0)))
	put(t, s, ver("Patient", "p1", 2, "org", at(1)))
	put(t, s, ver("Patient", "p2", 1, "org", at(1)))
	put(t, s, ver("Observation", "o1", 1, "org", at(1)))
	c, err := s.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"Patient": 2, "Observation": 1}; !reflect.DeepEqual(c, want) {
		t.Errorf("Counts = %v, want %v", c, want)
	}
}

func testUpdateRollback(t *testing.T, s storage.Store) {
	ctx := t.Context()
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx storage.Tx) error {
		if err := tx.Put(ctx, ver("Patient", "p1", 1, "Patient/p1", at(0)), []storage.IndexRow{tok("name", "x")}); err != nil {
			return err
		}
		if err := tx.PutKey(ctx, storage.KeyRecord{Owner: "Patient/p1", Wrapped: []byte("k"), Created: at(0)}); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Update returned %v, want fn's error unchanged", err)
	}
	if _, err := s.Current(ctx, "Patient", "p1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("rolled-back Put visible: %v", err)
	}
	if _, err := s.Key(ctx, "Patient/p1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("rolled-back PutKey visible: %v", err)
	}
	if vs, _ := s.History(ctx, storage.HistoryQuery{Count: 10}); len(vs) != 0 {
		t.Errorf("rolled-back version in history: %v", refs(vs))
	}
	// The store is usable afterwards and the version starts at 1.
	put(t, s, ver("Patient", "p1", 1, "Patient/p1", at(0)))
}

func testContextCancelled(t *testing.T, s storage.Store) {
	put(t, s, ver("Patient", "p1", 1, "Patient/p1", at(0)))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	err := s.Update(ctx, func(tx storage.Tx) error {
		called = true
		return tx.Put(ctx, ver("Patient", "p1", 2, "Patient/p1", at(1)), nil)
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Update on a cancelled context: %v, want context.Canceled", err)
	}
	if called {
		t.Error("fn ran on a cancelled context")
	}
	if _, err := s.Current(ctx, "Patient", "p1"); err == nil {
		t.Error("Current on a cancelled context succeeded")
	}
	if _, err := s.Search(ctx, storage.Query{Type: "Patient", Count: 1}); err == nil {
		t.Error("Search on a cancelled context succeeded")
	}
	// Cancelled in the middle of a transaction: nothing commits.
	ctx2, cancel2 := context.WithCancel(t.Context())
	err = s.Update(ctx2, func(tx storage.Tx) error {
		if err := tx.Put(ctx2, ver("Patient", "p1", 2, "Patient/p1", at(1)), nil); err != nil {
			return err
		}
		cancel2()
		return tx.Put(ctx2, ver("Patient", "p2", 1, "Patient/p2", at(1)), nil)
	})
	if err == nil {
		t.Fatal("Update cancelled mid-transaction succeeded")
	}
	if v, err := s.Current(t.Context(), "Patient", "p1"); err != nil || v.Version != 1 {
		t.Errorf("cancelled transaction committed: v%d %v", v.Version, err)
	}
}

func testHostileValues(t *testing.T, s storage.Store) {
	ctx := t.Context()
	hostile := []string{
		`o'brien`,
		`'; DROP TABLE resources; --`,
		`" OR 1=1 --`,
		`\x00?$1%_*`,
		`Ünïcødé-患者-🩺`,
		`a\'b`,
	}
	for i, id := range hostile {
		v := ver("Observation", id, 1, ident.PatientOwner(id), at(i))
		put(t, s, v, storage.IndexRow{Param: id, Hash: []byte(id + "\x00\x00'")})
		got, err := s.Current(ctx, "Observation", id)
		if err != nil {
			t.Fatalf("Current(%q): %v", id, err)
		}
		equalVersion(t, got, v)
		res := search(t, s, storage.Query{Type: "Observation", Count: 10, Clauses: one(storage.Cond{Kind: storage.CondHash, Param: id, Hashes: [][]byte{[]byte(id + "\x00\x00'")}})})
		if got := ids(res.Versions); !slices.Equal(got, []string{id}) {
			t.Errorf("search for %q: %v", id, got)
		}
		// A hash equal up to the NUL byte does not match.
		res = search(t, s, storage.Query{Type: "Observation", Count: 10, Clauses: one(storage.Cond{Kind: storage.CondHash, Param: id, Hashes: [][]byte{[]byte(id + "\x00")}})})
		if len(res.Versions) != 0 {
			t.Errorf("truncated hash for %q matched %v", id, ids(res.Versions))
		}
		res = search(t, s, storage.Query{Type: "Observation", Count: 10, Clauses: one(storage.Cond{Kind: storage.CondID, IDs: []string{id}})})
		if got := ids(res.Versions); !slices.Equal(got, []string{id}) {
			t.Errorf("_id search for %q: %v", id, got)
		}
	}
	if c, _ := s.Counts(ctx); c["Observation"] != int64(len(hostile)) {
		t.Errorf("Counts = %v, want %d Observations (tables intact)", c, len(hostile))
	}
	// Text the engines cannot store identically is refused, not mangled.
	for _, id := range []string{"nul\x00id", "bad\xffutf8", ""} {
		if err := tryPut(t, s, ver("Observation", id, 1, "org", at(0))); err == nil {
			t.Errorf("Put with id %q succeeded", id)
		}
	}
}

func testLock(t *testing.T, s storage.Store) {
	ctx := t.Context()
	err := s.Update(ctx, func(tx storage.Tx) error {
		if err := tx.Lock(ctx, "Patient?identifier=x"); err != nil {
			return err
		}
		return tx.Lock(ctx, "Patient?identifier=x") // re-entrant within a transaction
	})
	if err != nil {
		t.Fatal(err)
	}
}
