package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// logPending is the "pending" case of RunLog.
func logPending(t *testing.T, open func(t *testing.T) LogStores) {
	s := open(t)
	ctx := t.Context()
	recs := []storage.AuditRecord{
		{Time: time.UnixMicro(1).UTC(), Body: []byte("b0"), LeafHash: leafHash(0)},
		{Time: time.UnixMicro(2).UTC(), Body: []byte("b1"), LeafHash: leafHash(1)},
		{Time: time.UnixMicro(3).UTC(), Body: []byte("sealed before the tree")}, // no leaf hash
		{Time: time.UnixMicro(4).UTC(), Body: []byte("b3"), LeafHash: leafHash(3)},
	}
	if err := s.Store.AppendAudit(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	p := pending(t, s, 10)
	if len(p) != len(recs) {
		t.Fatalf("%d pending, want %d", len(p), len(recs))
	}
	for i, l := range p {
		if l.Index != -1 || (i > 0 && l.Seq <= p[i-1].Seq) {
			t.Errorf("pending %d: seq %d, index %d (not in sequence order, or indexed)", i, l.Seq, l.Index)
		}
		if !bytes.Equal(l.Body, recs[i].Body) || !bytes.Equal(l.LeafHash, recs[i].LeafHash) || !l.Time.Equal(recs[i].Time) {
			t.Errorf("pending %d: body %q, leaf hash %x, time %v; want %q, %x, %v",
				i, l.Body, l.LeafHash, l.Time, recs[i].Body, recs[i].LeafHash, recs[i].Time)
		}
	}
	if p[2].LeafHash != nil {
		t.Errorf("a record without a leaf hash reads back %x, want nil", p[2].LeafHash)
	}
	if got := pending(t, s, 2); len(got) != 2 || got[0].Seq != p[0].Seq || got[1].Seq != p[1].Seq {
		t.Errorf("Pending(2): %v, want the first two of %v", seqsOf(got), seqsOf(p))
	}
	if got := scanPending(t, s); !slices.Equal(seqsOf(got), seqsOf(p)) {
		t.Errorf("ScanPending: %v, want %v", seqsOf(got), seqsOf(p))
	} else {
		for i, l := range got {
			if l.Index != -1 || !bytes.Equal(l.Body, recs[i].Body) || !bytes.Equal(l.LeafHash, recs[i].LeafHash) || !l.Time.Equal(recs[i].Time) {
				t.Errorf("ScanPending %d: %+v", i, l)
			}
		}
	}
	if n, err := s.Log.CountPending(ctx); err != nil || n != 4 {
		t.Errorf("CountPending: %d, %v; want 4", n, err)
	}
	if n, err := s.Log.CountLegacy(ctx); err != nil || n != 0 {
		t.Errorf("CountLegacy: %d, %v; want 0", n, err)
	}
	boom := errors.New("boom")
	calls := 0
	err := s.Log.ScanPending(ctx, func(storage.LogLeaf) error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Errorf("ScanPending with a failing fn: %v after %d calls, want boom after 1", err, calls)
	}
}

// logPendingPaging is the "pending paging" case of RunLog.
func logPendingPaging(t *testing.T, open func(t *testing.T) LogStores) {
	// More records than one ScanPending page (1024 rows).
	s := open(t)
	ctx := t.Context()
	const n = 2100
	recs := make([]storage.AuditRecord, n)
	for i := range recs {
		recs[i] = storage.AuditRecord{Time: time.UnixMicro(int64(i)).UTC(), Body: fmt.Appendf(nil, "r%d", i), LeafHash: leafHash(byte(i))}
	}
	if err := s.Store.AppendAudit(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	got := scanPending(t, s)
	if len(got) != n {
		t.Fatalf("ScanPending: %d records, want %d", len(got), n)
	}
	for i, l := range got {
		if (i > 0 && l.Seq <= got[i-1].Seq) || !bytes.Equal(l.Body, recs[i].Body) {
			t.Fatalf("ScanPending %d: seq %d, body %q (out of order or wrong)", i, l.Seq, l.Body)
		}
	}
	if c, err := s.Log.CountPending(ctx); err != nil || c != n {
		t.Errorf("CountPending: %d, %v; want %d", c, err, n)
	}
	if p := pending(t, s, n+10); !slices.Equal(seqsOf(p), seqsOf(got)) {
		t.Errorf("Pending(all) differs from ScanPending")
	}
}

// logRemove is the "remove" case of RunLog.
func logRemove(t *testing.T, open func(t *testing.T) LogStores) {
	s := open(t)
	ctx := t.Context()
	p := appendPending(t, s, 8)
	seq := seqsOf(p)
	// Two runs: 0 and 2..3.
	integrate(t, s, func(tx storage.LogTx) error {
		return tx.Remove(ctx, []int64{seq[0], seq[2], seq[3]}, false)
	})
	wantPending(t, s, seq[1], seq[4], seq[5], seq[6], seq[7])

	refused := []struct {
		name   string
		seqs   []int64
		legacy bool
	}{
		{"removed", []int64{seq[0]}, false},
		{"removed in a run", []int64{seq[1], seq[2]}, false}, // 1 pending, 2 removed
		{"unknown", []int64{seq[7] + 1000}, false},
		{"unknown after a pending", []int64{seq[7], seq[7] + 1}, false},
		{"twice", []int64{seq[1], seq[1]}, false},
		{"pending as legacy", []int64{seq[1]}, true},
	}
	for _, c := range refused {
		err := s.Log.Integrate(ctx, func(tx storage.LogTx) error { return tx.Remove(ctx, c.seqs, c.legacy) })
		if !errors.Is(err, storage.ErrConflict) {
			t.Errorf("Remove %s %v (legacy %v): %v, want ErrConflict", c.name, c.seqs, c.legacy, err)
		}
		wantPending(t, s, seq[1], seq[4], seq[5], seq[6], seq[7])
	}
	// A successful Remove before a refused one in the same
	// integration is rolled back with it.
	err := s.Log.Integrate(ctx, func(tx storage.LogTx) error {
		if err := tx.Remove(ctx, []int64{seq[4], seq[5]}, false); err != nil {
			t.Errorf("Remove: %v", err)
			return err
		}
		return tx.Remove(ctx, []int64{seq[0]}, false)
	})
	if !errors.Is(err, storage.ErrConflict) {
		t.Errorf("Remove of a removed record after a good one: %v, want ErrConflict", err)
	}
	wantPending(t, s, seq[1], seq[4], seq[5], seq[6], seq[7])

	// Out of sequence order: runs of one each.
	integrate(t, s, func(tx storage.LogTx) error {
		return tx.Remove(ctx, []int64{seq[6], seq[4], seq[1]}, false)
	})
	wantPending(t, s, seq[5], seq[7])
	integrate(t, s, func(tx storage.LogTx) error {
		return tx.Remove(ctx, []int64{seq[5]}, false)
	})
	wantPending(t, s, seq[7])
	if n, err := s.Log.CountLegacy(ctx); err != nil || n != 0 {
		t.Errorf("CountLegacy: %d, %v; want 0", n, err)
	}
}

// logLegacy is the "legacy" case of RunLog.
func logLegacy(t *testing.T, open func(t *testing.T) LogStores) {
	s := open(t)
	if s.DB == nil {
		// No storage API writes leaf_index or tlog_hashes any more,
		// so legacy rows can only be fabricated with raw SQL.
		t.Skip("LogStores.DB not set: cannot fabricate records of the layout before entry bundles")
	}
	ctx := t.Context()
	p := appendPending(t, s, 6)
	seq := seqsOf(p)
	// Records 0..3 integrated under the old layout, with leaf
	// indexes out of sequence order: 2, 0, 3, 1.
	for i, idx := range []int64{2, 0, 3, 1} {
		rawExec(t, s, fmt.Sprintf("UPDATE audit_events SET leaf_index = %d WHERE seq = %d", idx, seq[i]))
	}
	rawExec(t, s, "INSERT INTO tlog_hashes (id, hash) SELECT seq, body FROM audit_events")
	byIndex := []storage.LogLeaf{p[1], p[3], p[0], p[2]}

	if n, err := s.Log.CountLegacy(ctx); err != nil || n != 4 {
		t.Errorf("CountLegacy: %d, %v; want 4", n, err)
	}
	if l, err := s.Log.FirstLegacy(ctx); err != nil || l.Index != 0 || l.Seq != seq[1] {
		t.Errorf("FirstLegacy: %+v, %v; want leaf 0, seq %d", l, err, seq[1])
	}
	if n, err := s.Log.CountPending(ctx); err != nil || n != 2 {
		t.Errorf("CountPending: %d, %v; want 2", n, err)
	}
	wantPending(t, s, seq[4], seq[5])
	if got := scanPending(t, s); !slices.Equal(seqsOf(got), []int64{seq[4], seq[5]}) {
		t.Errorf("ScanPending: %v, want only the pending %v", seqsOf(got), seq[4:])
	}
	integrate(t, s, func(tx storage.LogTx) error {
		got, err := tx.Legacy(ctx, 0, 10)
		if err != nil || len(got) != 4 {
			t.Fatalf("Legacy(0, 10): %d, %v; want 4", len(got), err)
		}
		for i, l := range got {
			w := byIndex[i]
			if l.Index != int64(i) || l.Seq != w.Seq || !bytes.Equal(l.Body, w.Body) || !bytes.Equal(l.LeafHash, w.LeafHash) || !l.Time.Equal(w.Time) {
				t.Errorf("Legacy %d: %+v, want seq %d", i, l, w.Seq)
			}
		}
		if got, err := tx.Legacy(ctx, 1, 2); err != nil || len(got) != 2 || got[0].Index != 1 || got[1].Index != 2 || got[0].Seq != seq[3] {
			t.Errorf("Legacy(1, 2): %+v, %v", got, err)
		}
		if got, err := tx.Legacy(ctx, 4, 10); err != nil || len(got) != 0 {
			t.Errorf("Legacy(4, 10): %+v, %v; want none", got, err)
		}
		return nil
	})

	// legacy=true removes only integrated records, legacy=false
	// only pending ones.
	for _, c := range []struct {
		seqs   []int64
		legacy bool
	}{
		{[]int64{seq[4]}, true},
		{[]int64{seq[3], seq[4]}, true},
		{[]int64{seq[0]}, false},
		{[]int64{seq[3], seq[4]}, false},
	} {
		err := s.Log.Integrate(ctx, func(tx storage.LogTx) error { return tx.Remove(ctx, c.seqs, c.legacy) })
		if !errors.Is(err, storage.ErrConflict) {
			t.Errorf("Remove(%v, legacy %v): %v, want ErrConflict", c.seqs, c.legacy, err)
		}
	}
	if n, _ := s.Log.CountLegacy(ctx); n != 4 {
		t.Errorf("refused Removes left %d legacy records, want 4", n)
	}
	wantPending(t, s, seq[4], seq[5])

	integrate(t, s, func(tx storage.LogTx) error { return tx.Remove(ctx, []int64{seq[0], seq[1], seq[2]}, true) })
	if n, err := s.Log.CountLegacy(ctx); err != nil || n != 1 {
		t.Errorf("CountLegacy after removing 3: %d, %v; want 1", n, err)
	}
	integrate(t, s, func(tx storage.LogTx) error {
		if got, err := tx.Legacy(ctx, 0, 10); err != nil || len(got) != 1 || got[0].Seq != seq[3] || got[0].Index != 1 {
			t.Errorf("Legacy after removing 3: %+v, %v", got, err)
		}
		return tx.Remove(ctx, []int64{seq[3]}, true)
	})
	if n, err := s.Log.CountLegacy(ctx); err != nil || n != 0 {
		t.Errorf("CountLegacy: %d, %v; want 0", n, err)
	}
	wantPending(t, s, seq[4], seq[5])

	// DropLegacyHashes empties tlog_hashes, and only on commit.
	if n := rawCount(t, s, "tlog_hashes"); n != 6 {
		t.Fatalf("tlog_hashes has %d rows, want 6", n)
	}
	boom := errors.New("boom")
	err := s.Log.Integrate(ctx, func(tx storage.LogTx) error {
		if err := tx.DropLegacyHashes(ctx); err != nil {
			t.Errorf("DropLegacyHashes: %v", err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("failed integration: %v", err)
	}
	if n := rawCount(t, s, "tlog_hashes"); n != 6 {
		t.Errorf("a failed DropLegacyHashes left %d rows, want 6", n)
	}
	integrate(t, s, func(tx storage.LogTx) error { return tx.DropLegacyHashes(ctx) })
	if n := rawCount(t, s, "tlog_hashes"); n != 0 {
		t.Errorf("DropLegacyHashes left %d rows", n)
	}
	wantPending(t, s, seq[4], seq[5])
}
