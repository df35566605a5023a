package storagetest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// LogStores is what RunLog needs: a store to append audit records to
// and the transparency log store on the same database.
type LogStores struct {
	Store storage.Store
	Log   storage.LogStore
	// DB, if set, is a raw connection to the same database. The suite
	// uses it only to fabricate what no storage API writes any more:
	// records integrated under the layout before entry bundles
	// (audit_events.leaf_index set) and rows of tlog_hashes. Without it
	// the "legacy" case is skipped.
	DB *sql.DB
}

// RunLog is the conformance suite of storage.LogStore (ADR 0010, ADR
// 0014): pending records read back in sequence order and are removed
// exactly once, bundles and tiles are only ever replaced by wider ones
// and read and scan back as written, checkpoints are unique per size,
// a failed integration leaves nothing behind, and integrators are
// serialised.
func RunLog(t *testing.T, open func(t *testing.T) LogStores) {
	t.Run("empty", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		if _, err := s.Log.LatestCheckpoint(ctx); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("LatestCheckpoint on an empty log: %v, want ErrNotFound", err)
		}
		if _, err := s.Log.CheckpointAt(ctx, 0); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("CheckpointAt(0) on an empty log: %v, want ErrNotFound", err)
		}
		if n, err := s.Log.CountPending(ctx); err != nil || n != 0 {
			t.Errorf("CountPending: %d, %v", n, err)
		}
		if n, err := s.Log.CountLegacy(ctx); err != nil || n != 0 {
			t.Errorf("CountLegacy: %d, %v", n, err)
		}
		if _, err := s.Log.FirstLegacy(ctx); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("FirstLegacy of an empty log: %v, want ErrNotFound", err)
		}
		if n, err := s.Log.StoredSize(ctx); err != nil || n != 0 {
			t.Errorf("StoredSize of an empty log: %d, %v", n, err)
		}
		if got := scanPending(t, s); len(got) != 0 {
			t.Errorf("ScanPending: %+v", got)
		}
		if got := scanBundles(t, s, 0, 1<<40); len(got) != 0 {
			t.Errorf("ScanBundles: %+v", got)
		}
		if got := scanTiles(t, s, 0, 0, 1<<40); len(got) != 0 {
			t.Errorf("ScanTiles: %+v", got)
		}
		if got := scanCheckpoints(t, s); len(got) != 0 {
			t.Errorf("ScanCheckpoints: %+v", got)
		}
		if got, err := s.Log.ReadTiles(ctx, nil); err != nil || len(got) != 0 {
			t.Errorf("ReadTiles(nil): %+v, %v", got, err)
		}
		if _, err := s.Log.ReadTiles(ctx, []storage.TileRef{{Level: 0, N: 0}}); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("ReadTiles of a missing tile: %v, want ErrNotFound", err)
		}
		integrate(t, s, func(tx storage.LogTx) error {
			if n, err := tx.Size(ctx); err != nil || n != 0 {
				t.Errorf("Size: %d, %v", n, err)
			}
			if _, err := tx.Latest(ctx); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Latest: %v, want ErrNotFound", err)
			}
			if p, err := tx.Pending(ctx, 10); err != nil || len(p) != 0 {
				t.Errorf("Pending: %+v, %v", p, err)
			}
			if p, err := tx.Legacy(ctx, 0, 10); err != nil || len(p) != 0 {
				t.Errorf("Legacy: %+v, %v", p, err)
			}
			if _, err := tx.Bundle(ctx, 0); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Bundle(0): %v, want ErrNotFound", err)
			}
			if _, err := tx.ReadTiles(ctx, []storage.TileRef{{Level: 0, N: 0}}); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("ReadTiles in the transaction: %v, want ErrNotFound", err)
			}
			if err := tx.Remove(ctx, nil, false); err != nil {
				t.Errorf("Remove(nil): %v", err)
			}
			if err := tx.DropLegacyHashes(ctx); err != nil {
				t.Errorf("DropLegacyHashes with none: %v", err)
			}
			return nil
		})
	})

	t.Run("pending", func(t *testing.T) {
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
		if got := scanPending(t, s); !equalSeqs(seqsOf(got), seqsOf(p)) {
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
	})

	t.Run("pending paging", func(t *testing.T) {
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
		if p := pending(t, s, n+10); !equalSeqs(seqsOf(p), seqsOf(got)) {
			t.Errorf("Pending(all) differs from ScanPending")
		}
	})

	t.Run("remove", func(t *testing.T) {
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
	})

	t.Run("legacy", func(t *testing.T) {
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
		if got := scanPending(t, s); !equalSeqs(seqsOf(got), []int64{seq[4], seq[5]}) {
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
	})

	t.Run("bundles", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		if n := size(t, s); n != 0 {
			t.Errorf("Size with no bundles: %d", n)
		}
		b0 := storage.Bundle{N: 0, Width: 10, Sealed: []byte("bundle 0/10")}
		integrate(t, s, func(tx storage.LogTx) error {
			if err := tx.PutBundle(ctx, b0); err != nil {
				return err
			}
			// Read back in the same transaction.
			if got, err := tx.Bundle(ctx, 0); err != nil || !equalBundle(got, b0) {
				t.Errorf("Bundle(0) in the transaction: %+v, %v", got, err)
			}
			if n, err := tx.Size(ctx); err != nil || n != 10 {
				t.Errorf("Size in the transaction: %d, %v; want 10", n, err)
			}
			return nil
		})
		wantBundle(t, s, b0)
		if n := size(t, s); n != 10 {
			t.Errorf("Size: %d, want 10", n)
		}
		if n, err := s.Log.StoredSize(ctx); err != nil || n != 10 {
			t.Errorf("StoredSize: %d, %v; want 10", n, err)
		}
		for _, b := range []storage.Bundle{
			{N: 0, Width: 10, Sealed: []byte("equal")},
			{N: 0, Width: 9, Sealed: []byte("narrower")},
			{N: 0, Width: 1, Sealed: []byte("narrower")},
		} {
			err := s.Log.Integrate(ctx, func(tx storage.LogTx) error { return tx.PutBundle(ctx, b) })
			if !errors.Is(err, storage.ErrConflict) {
				t.Errorf("PutBundle of width %d over width 10: %v, want ErrConflict", b.Width, err)
			}
			wantBundle(t, s, b0)
		}
		b0 = storage.Bundle{N: 0, Width: 11, Sealed: []byte("bundle 0/11")}
		integrate(t, s, func(tx storage.LogTx) error { return tx.PutBundle(ctx, b0) })
		wantBundle(t, s, b0)
		b0 = storage.Bundle{N: 0, Width: 256, Sealed: []byte("bundle 0/256")}
		integrate(t, s, func(tx storage.LogTx) error { return tx.PutBundle(ctx, b0) })
		wantBundle(t, s, b0)
		if n := size(t, s); n != 256 {
			t.Errorf("Size: %d, want 256", n)
		}
		b1 := storage.Bundle{N: 1, Width: 3, Sealed: []byte("bundle 1/3")}
		integrate(t, s, func(tx storage.LogTx) error { return tx.PutBundle(ctx, b1) })
		if n := size(t, s); n != 259 {
			t.Errorf("Size: %d, want 259", n)
		}
		integrate(t, s, func(tx storage.LogTx) error {
			if _, err := tx.Bundle(ctx, 2); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Bundle(2): %v, want ErrNotFound", err)
			}
			if _, err := tx.Bundle(ctx, -1); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Bundle(-1): %v, want ErrNotFound", err)
			}
			return nil
		})
		// A failed integration stores no bundle.
		boom := errors.New("boom")
		err := s.Log.Integrate(ctx, func(tx storage.LogTx) error {
			if err := tx.PutBundle(ctx, storage.Bundle{N: 1, Width: 200, Sealed: []byte("x")}); err != nil {
				t.Errorf("PutBundle: %v", err)
			}
			if err := tx.PutBundle(ctx, storage.Bundle{N: 2, Width: 1, Sealed: []byte("y")}); err != nil {
				t.Errorf("PutBundle: %v", err)
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Errorf("failed integration: %v", err)
		}
		wantBundle(t, s, b1)
		if n := size(t, s); n != 259 {
			t.Errorf("Size after a failed integration: %d, want 259", n)
		}
		// Size is n*256+width of the last bundle, also after a gap.
		b3 := storage.Bundle{N: 3, Width: 1, Sealed: []byte("bundle 3/1")}
		integrate(t, s, func(tx storage.LogTx) error { return tx.PutBundle(ctx, b3) })
		if n := size(t, s); n != 3*256+1 {
			t.Errorf("Size: %d, want %d", n, 3*256+1)
		}

		for _, c := range []struct {
			from, to int64
			want     []storage.Bundle
		}{
			{0, 10, []storage.Bundle{b0, b1, b3}},
			{0, 4, []storage.Bundle{b0, b1, b3}},
			{0, 3, []storage.Bundle{b0, b1}},
			{1, 3, []storage.Bundle{b1}},
			{2, 3, nil},
			{1, 1, nil},
			{3, 1, nil},
			{4, 100, nil},
		} {
			got := scanBundles(t, s, c.from, c.to)
			if len(got) != len(c.want) {
				t.Errorf("ScanBundles [%d,%d): %d bundles, want %d", c.from, c.to, len(got), len(c.want))
				continue
			}
			for i := range got {
				if !equalBundle(got[i], c.want[i]) {
					t.Errorf("ScanBundles [%d,%d) %d: %+v, want %+v", c.from, c.to, i, got[i], c.want[i])
				}
			}
		}
		calls := 0
		err = s.Log.ScanBundles(ctx, 0, 10, func(storage.Bundle) error {
			calls++
			if calls == 2 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) || calls != 2 {
			t.Errorf("ScanBundles with a failing fn: %v after %d calls, want boom after 2", err, calls)
		}
	})

	t.Run("bundle paging", func(t *testing.T) {
		// More bundles than one ScanBundles page (32), with a gap at 33.
		s := open(t)
		ctx := t.Context()
		var all []storage.Bundle
		for n := range int64(71) {
			if n == 33 {
				continue
			}
			w := 256
			if n == 70 {
				w = 17
			}
			all = append(all, storage.Bundle{N: n, Width: w, Sealed: fmt.Appendf(nil, "bundle %d", n)})
		}
		integrate(t, s, func(tx storage.LogTx) error {
			for _, b := range all {
				if err := tx.PutBundle(ctx, b); err != nil {
					return err
				}
			}
			return nil
		})
		if n := size(t, s); n != 70*256+17 {
			t.Errorf("Size: %d, want %d", n, 70*256+17)
		}
		if got := scanBundles(t, s, 0, 1000); !equalBundles(got, all) {
			t.Errorf("ScanBundles [0,1000): %v, want %v", bundleNs(got), bundleNs(all))
		}
		// [5, 68): bundles 5..67 without 33.
		if got := scanBundles(t, s, 5, 68); !equalBundles(got, all[5:67]) {
			t.Errorf("ScanBundles [5,68): %v, want %v", bundleNs(got), bundleNs(all[5:67]))
		}
		// [30, 64): exactly 33 bundles but the gap, across a page.
		if got := scanBundles(t, s, 30, 65); !equalBundles(got, all[30:64]) {
			t.Errorf("ScanBundles [30,65): %v, want %v", bundleNs(got), bundleNs(all[30:64]))
		}
		boom := errors.New("boom")
		calls := 0
		err := s.Log.ScanBundles(ctx, 0, 1000, func(storage.Bundle) error {
			calls++
			if calls == 40 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) || calls != 40 {
			t.Errorf("ScanBundles with fn failing in the second page: %v after %d calls, want boom after 40", err, calls)
		}
		integrate(t, s, func(tx storage.LogTx) error {
			if got, err := tx.Bundle(ctx, 69); err != nil || !equalBundle(got, all[68]) {
				t.Errorf("Bundle(69): %+v, %v", got, err)
			}
			if _, err := tx.Bundle(ctx, 33); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Bundle(33): %v, want ErrNotFound", err)
			}
			return nil
		})
	})

	t.Run("tiles", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		t00 := tile(0, 0, 256, 1)
		t01 := tile(0, 1, 5, 2)
		t10 := tile(1, 0, 1, 3)
		t20 := tile(2, 0, 1, 4)
		integrate(t, s, func(tx storage.LogTx) error {
			if err := tx.PutTiles(ctx, []storage.Tile{t00, t01, t10, t20}); err != nil {
				return err
			}
			got, err := tx.ReadTiles(ctx, []storage.TileRef{{Level: 2, N: 0}, {Level: 0, N: 1}})
			if err != nil || len(got) != 2 || !equalTile(got[0], t20) || !equalTile(got[1], t01) {
				t.Errorf("ReadTiles in the transaction: %+v, %v", got, err)
			}
			return nil
		})
		refs := []storage.TileRef{{Level: 1, N: 0}, {Level: 0, N: 1}, {Level: 0, N: 0}, {Level: 2, N: 0}, {Level: 0, N: 1}}
		want := []storage.Tile{t10, t01, t00, t20, t01}
		got, err := s.Log.ReadTiles(ctx, refs)
		if err != nil || !equalTiles(got, want) {
			t.Errorf("ReadTiles %v: %+v, %v", refs, got, err)
		}
		for _, missing := range [][]storage.TileRef{
			{{Level: 0, N: 2}},
			{{Level: 0, N: 0}, {Level: 3, N: 0}},
			{{Level: 1, N: 1}, {Level: 0, N: 0}},
		} {
			if got, err := s.Log.ReadTiles(ctx, missing); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("ReadTiles %v with a missing tile: %+v, %v; want ErrNotFound", missing, got, err)
			}
			err := s.Log.Integrate(ctx, func(tx storage.LogTx) error {
				_, err := tx.ReadTiles(ctx, missing)
				return err
			})
			if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("ReadTiles %v with a missing tile in the transaction: %v; want ErrNotFound", missing, err)
			}
		}

		// Wider replaces narrower; equal or narrower is refused, and a
		// refused tile fails the batch.
		t01w := tile(0, 1, 6, 5)
		integrate(t, s, func(tx storage.LogTx) error { return tx.PutTiles(ctx, []storage.Tile{t01w}) })
		wantTile(t, s, t01w)
		for _, bad := range []storage.Tile{tile(0, 1, 6, 6), tile(0, 1, 5, 6), tile(0, 0, 255, 6)} {
			err := s.Log.Integrate(ctx, func(tx storage.LogTx) error {
				return tx.PutTiles(ctx, []storage.Tile{tile(1, 0, 2, 7), bad})
			})
			if !errors.Is(err, storage.ErrConflict) {
				t.Errorf("PutTiles of %d/%d width %d: %v, want ErrConflict", bad.Level, bad.N, bad.Width, err)
			}
			wantTile(t, s, t01w)
			wantTile(t, s, t00)
			wantTile(t, s, t10)
		}
		// A failed integration stores no tile.
		boom := errors.New("boom")
		err = s.Log.Integrate(ctx, func(tx storage.LogTx) error {
			if err := tx.PutTiles(ctx, []storage.Tile{tile(0, 1, 7, 8), tile(0, 2, 1, 8)}); err != nil {
				t.Errorf("PutTiles: %v", err)
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Errorf("failed integration: %v", err)
		}
		wantTile(t, s, t01w)
		if _, err := s.Log.ReadTiles(ctx, []storage.TileRef{{Level: 0, N: 2}}); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("a failed integration left tile 0/2: %v", err)
		}

		for _, c := range []struct {
			level    int
			from, to int64
			want     []storage.Tile
		}{
			{0, 0, 10, []storage.Tile{t00, t01w}},
			{0, 1, 2, []storage.Tile{t01w}},
			{0, 2, 10, nil},
			{1, 0, 10, []storage.Tile{t10}},
			{2, 0, 1, []storage.Tile{t20}},
			{2, 1, 0, nil},
			{3, 0, 10, nil},
		} {
			if got := scanTiles(t, s, c.level, c.from, c.to); !equalTiles(got, c.want) {
				t.Errorf("ScanTiles level %d [%d,%d): %+v, want %+v", c.level, c.from, c.to, got, c.want)
			}
		}
		calls := 0
		err = s.Log.ScanTiles(ctx, 0, 0, 10, func(storage.Tile) error { calls++; return boom })
		if !errors.Is(err, boom) || calls != 1 {
			t.Errorf("ScanTiles with a failing fn: %v after %d calls, want boom after 1", err, calls)
		}
	})

	t.Run("tile paging", func(t *testing.T) {
		// More tiles than one ScanTiles page (256) and than one ReadTiles
		// statement (400), on two levels, with a gap at level 0 tile 300.
		s := open(t)
		ctx := t.Context()
		var l0, l1 []storage.Tile
		for n := range int64(451) {
			if n != 300 {
				l0 = append(l0, tile(0, n, 1, byte(n)))
			}
		}
		for n := range int64(3) {
			l1 = append(l1, tile(1, n, 2, byte(100+n)))
		}
		integrate(t, s, func(tx storage.LogTx) error {
			if err := tx.PutTiles(ctx, l1); err != nil {
				return err
			}
			return tx.PutTiles(ctx, l0)
		})
		if got := scanTiles(t, s, 0, 0, 1000); !equalTiles(got, l0) {
			t.Errorf("ScanTiles level 0 [0,1000): %d tiles %v, want %d", len(got), tileNs(got), len(l0))
		}
		// [10, 290) is 280 tiles: more than a page, from an offset.
		if got := scanTiles(t, s, 0, 10, 290); !equalTiles(got, l0[10:290]) {
			t.Errorf("ScanTiles level 0 [10,290): %d tiles, want 280", len(got))
		}
		if got := scanTiles(t, s, 0, 250, 520); !equalTiles(got, l0[250:]) {
			t.Errorf("ScanTiles level 0 [250,520): %d tiles, want %d", len(got), len(l0[250:]))
		}
		if got := scanTiles(t, s, 1, 0, 1000); !equalTiles(got, l1) {
			t.Errorf("ScanTiles level 1: %+v, want %+v", got, l1)
		}
		boom := errors.New("boom")
		calls := 0
		err := s.Log.ScanTiles(ctx, 0, 0, 1000, func(storage.Tile) error {
			calls++
			if calls == 300 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) || calls != 300 {
			t.Errorf("ScanTiles with fn failing in the second page: %v after %d calls, want boom after 300", err, calls)
		}

		// ReadTiles of all of them, in reverse and mixed with level 1.
		var refs []storage.TileRef
		var want []storage.Tile
		for i := len(l0) - 1; i >= 0; i-- {
			refs = append(refs, storage.TileRef{Level: 0, N: l0[i].N})
			want = append(want, l0[i])
			if i%200 == 0 {
				l := l1[i/200]
				refs = append(refs, storage.TileRef{Level: 1, N: l.N})
				want = append(want, l)
			}
		}
		got, err := s.Log.ReadTiles(ctx, refs)
		if err != nil || !equalTiles(got, want) {
			t.Errorf("ReadTiles of %d tiles: %d, %v", len(refs), len(got), err)
		}
		refs = append(refs, storage.TileRef{Level: 0, N: 300})
		if _, err := s.Log.ReadTiles(ctx, refs); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("ReadTiles of %d tiles with one missing: %v, want ErrNotFound", len(refs), err)
		}
	})

	t.Run("checkpoints", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		cp := func(n int64) storage.Checkpoint {
			return storage.Checkpoint{Size: n, Root: leafHash(byte(n)), Note: fmt.Appendf(nil, "note %d\n", n), Created: time.UnixMicro(1000 + n).UTC()}
		}
		integrate(t, s, func(tx storage.LogTx) error {
			for _, n := range []int64{3, 1} {
				if err := tx.PutCheckpoint(ctx, cp(n)); err != nil {
					return err
				}
			}
			if c, err := tx.Latest(ctx); err != nil || !equalCheckpoint(c, cp(3)) {
				t.Errorf("Latest in the transaction: %+v, %v", c, err)
			}
			return nil
		})
		integrate(t, s, func(tx storage.LogTx) error { return tx.PutCheckpoint(ctx, cp(2)) })
		err := s.Log.Integrate(ctx, func(tx storage.LogTx) error {
			c := cp(3)
			c.Note = []byte("another note 3\n")
			return tx.PutCheckpoint(ctx, c)
		})
		if !errors.Is(err, storage.ErrConflict) {
			t.Errorf("a second checkpoint of one size: %v, want ErrConflict", err)
		}
		if c, err := s.Log.LatestCheckpoint(ctx); err != nil || !equalCheckpoint(c, cp(3)) {
			t.Errorf("LatestCheckpoint: %+v, %v", c, err)
		}
		integrate(t, s, func(tx storage.LogTx) error {
			if c, err := tx.Latest(ctx); err != nil || !equalCheckpoint(c, cp(3)) {
				t.Errorf("Latest: %+v, %v", c, err)
			}
			return nil
		})
		for _, n := range []int64{1, 2, 3} {
			if c, err := s.Log.CheckpointAt(ctx, n); err != nil || !equalCheckpoint(c, cp(n)) {
				t.Errorf("CheckpointAt(%d): %+v, %v", n, c, err)
			}
		}
		for _, n := range []int64{0, 4, 7} {
			if _, err := s.Log.CheckpointAt(ctx, n); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("CheckpointAt(%d): %v, want ErrNotFound", n, err)
			}
		}
		// More than one ScanCheckpoints page (256).
		integrate(t, s, func(tx storage.LogTx) error {
			for n := int64(600); n > 3; n-- {
				if err := tx.PutCheckpoint(ctx, cp(n)); err != nil {
					return err
				}
			}
			return nil
		})
		got := scanCheckpoints(t, s)
		if len(got) != 600 {
			t.Fatalf("ScanCheckpoints: %d checkpoints, want 600", len(got))
		}
		for i, c := range got {
			if !equalCheckpoint(c, cp(int64(i+1))) {
				t.Fatalf("ScanCheckpoints %d: %+v, want size %d", i, c, i+1)
			}
		}
		if c, err := s.Log.LatestCheckpoint(ctx); err != nil || !equalCheckpoint(c, cp(600)) {
			t.Errorf("LatestCheckpoint: %+v, %v", c, err)
		}
		boom := errors.New("boom")
		calls := 0
		err = s.Log.ScanCheckpoints(ctx, func(storage.Checkpoint) error {
			calls++
			if calls == 300 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) || calls != 300 {
			t.Errorf("ScanCheckpoints with a failing fn: %v after %d calls, want boom after 300", err, calls)
		}
	})

	t.Run("rollback", func(t *testing.T) {
		// A failed integration changes nothing, whatever it wrote.
		s := open(t)
		ctx := t.Context()
		p := appendPending(t, s, 3)
		seq := seqsOf(p)
		boom := errors.New("boom")
		err := s.Log.Integrate(ctx, func(tx storage.LogTx) error {
			steps := []error{
				tx.PutBundle(ctx, storage.Bundle{N: 0, Width: 3, Sealed: []byte("b")}),
				tx.PutTiles(ctx, []storage.Tile{tile(0, 0, 3, 1)}),
				tx.Remove(ctx, seq, false),
				tx.PutCheckpoint(ctx, storage.Checkpoint{Size: 3, Root: leafHash(3), Note: []byte("n"), Created: time.UnixMicro(1).UTC()}),
				tx.DropLegacyHashes(ctx),
			}
			for i, err := range steps {
				if err != nil {
					t.Errorf("step %d: %v", i, err)
				}
			}
			if n, err := tx.Size(ctx); err != nil || n != 3 {
				t.Errorf("Size in the transaction: %d, %v; want 3", n, err)
			}
			if p, err := tx.Pending(ctx, 10); err != nil || len(p) != 0 {
				t.Errorf("Pending after Remove in the transaction: %v, %v", seqsOf(p), err)
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("failed integration: %v, want boom", err)
		}
		wantPending(t, s, seq...)
		if n := size(t, s); n != 0 {
			t.Errorf("Size: %d, want 0", n)
		}
		if got := scanBundles(t, s, 0, 10); len(got) != 0 {
			t.Errorf("a failed integration left bundles %v", bundleNs(got))
		}
		if _, err := s.Log.ReadTiles(ctx, []storage.TileRef{{Level: 0, N: 0}}); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("a failed integration left a tile: %v", err)
		}
		if _, err := s.Log.LatestCheckpoint(ctx); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("a failed integration left a checkpoint: %v", err)
		}
	})

	t.Run("integrate", func(t *testing.T) {
		// The integrator's whole cycle, in batches: pending records
		// move into bundles (the last one growing), tiles grow, records
		// are removed, one checkpoint per batch.
		s := open(t)
		ctx := t.Context()
		const total, batch = 300, 70
		recs := make([]storage.AuditRecord, total)
		for i := range recs {
			recs[i] = storage.AuditRecord{Time: time.UnixMicro(int64(i)).UTC(), Body: fmt.Appendf(nil, "r%d;", i), LeafHash: leafHash(byte(i))}
		}
		if err := s.Store.AppendAudit(ctx, recs...); err != nil {
			t.Fatal(err)
		}
		for step := 0; ; step++ {
			done := false
			integrate(t, s, func(tx storage.LogTx) error {
				done = false
				n, err := integrateBatch(ctx, tx, batch)
				done = n == 0
				return err
			})
			if done {
				break
			}
			if step > total {
				t.Fatal("integration does not finish")
			}
		}
		if n := size(t, s); n != total {
			t.Errorf("Size: %d, want %d", n, total)
		}
		if n, err := s.Log.CountPending(ctx); err != nil || n != 0 {
			t.Errorf("CountPending: %d, %v", n, err)
		}
		bs := scanBundles(t, s, 0, 10)
		if len(bs) != 2 || bs[0].Width != 256 || bs[1].Width != total-256 {
			t.Fatalf("bundles: %+v", bs)
		}
		var all []byte
		for _, b := range bs {
			all = append(all, b.Sealed...)
		}
		var want []byte
		for _, r := range recs {
			want = append(want, r.Body...)
		}
		if !bytes.Equal(all, want) {
			t.Errorf("bundles hold %q, want %q", all, want)
		}
		if ts := scanTiles(t, s, 0, 0, 10); len(ts) != 2 || ts[0].Width != 256 || ts[1].Width != total-256 {
			t.Errorf("tiles: %+v", ts)
		}
		var sizes []int64
		for _, c := range scanCheckpoints(t, s) {
			sizes = append(sizes, c.Size)
		}
		if !equalSeqs(sizes, []int64{70, 140, 210, 280, 300}) {
			t.Errorf("checkpoint sizes %v", sizes)
		}
	})

	t.Run("concurrent integrators", func(t *testing.T) {
		// Integrate holds the integration lock: integrators racing over
		// the same pending records each see the previous one's commit,
		// so none removes a record twice or rewrites a checkpoint.
		s := open(t)
		ctx := t.Context()
		const workers, rounds, batch = 4, 6, 3
		recs := make([]storage.AuditRecord, workers*rounds*batch)
		for i := range recs {
			recs[i] = storage.AuditRecord{Time: time.UnixMicro(int64(i)).UTC(), Body: fmt.Appendf(nil, "r%d;", i), LeafHash: leafHash(byte(i))}
		}
		if err := s.Store.AppendAudit(ctx, recs...); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, workers*rounds)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range rounds {
					err := s.Log.Integrate(ctx, func(tx storage.LogTx) error {
						n, err := integrateBatch(ctx, tx, batch)
						if err == nil && n != batch {
							err = fmt.Errorf("integrated %d records, want %d", n, batch)
						}
						return err
					})
					if err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent integration: %v", err)
		}
		if n := size(t, s); n != int64(len(recs)) {
			t.Errorf("Size: %d, want %d", n, len(recs))
		}
		if n, err := s.Log.CountPending(ctx); err != nil || n != 0 {
			t.Errorf("CountPending: %d, %v", n, err)
		}
		b, err := func() (storage.Bundle, error) {
			var b storage.Bundle
			err := s.Log.Integrate(ctx, func(tx storage.LogTx) error {
				var err error
				b, err = tx.Bundle(ctx, 0)
				return err
			})
			return b, err
		}()
		var want []byte
		for _, r := range recs {
			want = append(want, r.Body...)
		}
		if err != nil || b.Width != len(recs) || !bytes.Equal(b.Sealed, want) {
			t.Errorf("bundle 0: width %d, %q, %v; want %d, %q", b.Width, b.Sealed, err, len(recs), want)
		}
		cps := scanCheckpoints(t, s)
		if len(cps) != workers*rounds {
			t.Errorf("%d checkpoints, want %d", len(cps), workers*rounds)
		}
		for i, c := range cps {
			if c.Size != int64((i+1)*batch) {
				t.Errorf("checkpoint %d: size %d, want %d", i, c.Size, (i+1)*batch)
			}
		}
	})
}

// integrateBatch is a toy integrator: it moves up to limit pending
// records into the entry bundles (a bundle's "sealed" body is the
// concatenation of its records' bodies), writes level-0 tiles of their
// leaf hashes, removes the records and stores a checkpoint. It returns
// the number of records integrated.
func integrateBatch(ctx context.Context, tx storage.LogTx, limit int) (int, error) {
	p, err := tx.Pending(ctx, limit)
	if err != nil || len(p) == 0 {
		return 0, err
	}
	size, err := tx.Size(ctx)
	if err != nil {
		return 0, err
	}
	var prev storage.Bundle
	var prevTile storage.Tile
	if size%256 != 0 {
		if prev, err = tx.Bundle(ctx, size/256); err != nil {
			return 0, err
		}
		ts, err := tx.ReadTiles(ctx, []storage.TileRef{{Level: 0, N: size / 256}})
		if err != nil {
			return 0, err
		}
		prevTile = ts[0]
	}
	if prev.Width != int(size%256) || prevTile.Width != int(size%256) {
		return 0, fmt.Errorf("size %d but last bundle of width %d, tile of width %d", size, prev.Width, prevTile.Width)
	}
	body, data := prev.Sealed, prevTile.Data
	seqs := make([]int64, 0, len(p))
	for i, l := range p {
		idx := size + int64(i)
		body = append(body, l.Body...)
		data = append(data, l.LeafHash...)
		seqs = append(seqs, l.Seq)
		if (idx+1)%256 == 0 || i == len(p)-1 {
			n, w := idx/256, int(idx%256)+1
			if err := tx.PutBundle(ctx, storage.Bundle{N: n, Width: w, Sealed: body}); err != nil {
				return 0, err
			}
			if err := tx.PutTiles(ctx, []storage.Tile{{Level: 0, N: n, Width: w, Data: data}}); err != nil {
				return 0, err
			}
			body, data = nil, nil
		}
	}
	if err := tx.Remove(ctx, seqs, false); err != nil {
		return 0, err
	}
	newSize := size + int64(len(p))
	cp := storage.Checkpoint{Size: newSize, Root: leafHash(byte(newSize)), Note: fmt.Appendf(nil, "size %d\n", newSize), Created: time.UnixMicro(newSize).UTC()}
	if err := tx.PutCheckpoint(ctx, cp); err != nil {
		return 0, err
	}
	return len(p), nil
}

func leafHash(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// tile returns a tile of width hashes filled with fill.
func tile(level int, n int64, width int, fill byte) storage.Tile {
	return storage.Tile{Level: level, N: n, Width: width, Data: bytes.Repeat([]byte{fill}, 32*width)}
}

func integrate(t *testing.T, s LogStores, fn func(storage.LogTx) error) {
	t.Helper()
	if err := s.Log.Integrate(t.Context(), fn); err != nil {
		t.Fatal(err)
	}
}

func size(t *testing.T, s LogStores) int64 {
	t.Helper()
	var n int64
	integrate(t, s, func(tx storage.LogTx) error {
		var err error
		n, err = tx.Size(t.Context())
		return err
	})
	return n
}

func pending(t *testing.T, s LogStores, limit int) []storage.LogLeaf {
	t.Helper()
	var p []storage.LogLeaf
	integrate(t, s, func(tx storage.LogTx) error {
		var err error
		p, err = tx.Pending(t.Context(), limit)
		return err
	})
	return p
}

// appendPending appends n records and returns them as pending leaves.
func appendPending(t *testing.T, s LogStores, n int) []storage.LogLeaf {
	t.Helper()
	recs := make([]storage.AuditRecord, n)
	for i := range recs {
		recs[i] = storage.AuditRecord{Time: time.UnixMicro(int64(i + 1)).UTC(), Body: fmt.Appendf(nil, "body %d", i), LeafHash: leafHash(byte(i))}
	}
	if err := s.Store.AppendAudit(t.Context(), recs...); err != nil {
		t.Fatal(err)
	}
	p := pending(t, s, n+1)
	if len(p) != n {
		t.Fatalf("%d pending, want %d", len(p), n)
	}
	for i, l := range p {
		if !bytes.Equal(l.Body, recs[i].Body) {
			t.Fatalf("pending %d: %q, want %q", i, l.Body, recs[i].Body)
		}
	}
	return p
}

// wantPending checks that exactly the records seqs are pending, in
// this order, by Pending, ScanPending and CountPending.
func wantPending(t *testing.T, s LogStores, seqs ...int64) {
	t.Helper()
	if got := seqsOf(pending(t, s, len(seqs)+10)); !equalSeqs(got, seqs) {
		t.Errorf("pending %v, want %v", got, seqs)
	}
	if got := seqsOf(scanPending(t, s)); !equalSeqs(got, seqs) {
		t.Errorf("ScanPending %v, want %v", got, seqs)
	}
	if n, err := s.Log.CountPending(t.Context()); err != nil || n != int64(len(seqs)) {
		t.Errorf("CountPending: %d, %v; want %d", n, err, len(seqs))
	}
}

func wantBundle(t *testing.T, s LogStores, want storage.Bundle) {
	t.Helper()
	integrate(t, s, func(tx storage.LogTx) error {
		got, err := tx.Bundle(t.Context(), want.N)
		if err != nil || !equalBundle(got, want) {
			t.Errorf("Bundle(%d): %+v, %v; want %+v", want.N, got, err, want)
		}
		return nil
	})
	if got := scanBundles(t, s, want.N, want.N+1); len(got) != 1 || !equalBundle(got[0], want) {
		t.Errorf("ScanBundles [%d,%d): %+v, want %+v", want.N, want.N+1, got, want)
	}
}

func wantTile(t *testing.T, s LogStores, want storage.Tile) {
	t.Helper()
	got, err := s.Log.ReadTiles(t.Context(), []storage.TileRef{{Level: want.Level, N: want.N}})
	if err != nil || len(got) != 1 || !equalTile(got[0], want) {
		t.Errorf("ReadTiles %d/%d: %+v, %v; want width %d", want.Level, want.N, got, err, want.Width)
	}
	if got := scanTiles(t, s, want.Level, want.N, want.N+1); len(got) != 1 || !equalTile(got[0], want) {
		t.Errorf("ScanTiles %d/%d: %+v; want width %d", want.Level, want.N, got, want.Width)
	}
}

func scanPending(t *testing.T, s LogStores) []storage.LogLeaf {
	t.Helper()
	var out []storage.LogLeaf
	if err := s.Log.ScanPending(t.Context(), func(l storage.LogLeaf) error { out = append(out, l); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func scanBundles(t *testing.T, s LogStores, from, to int64) []storage.Bundle {
	t.Helper()
	var out []storage.Bundle
	if err := s.Log.ScanBundles(t.Context(), from, to, func(b storage.Bundle) error { out = append(out, b); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func scanTiles(t *testing.T, s LogStores, level int, from, to int64) []storage.Tile {
	t.Helper()
	var out []storage.Tile
	if err := s.Log.ScanTiles(t.Context(), level, from, to, func(x storage.Tile) error { out = append(out, x); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func scanCheckpoints(t *testing.T, s LogStores) []storage.Checkpoint {
	t.Helper()
	var out []storage.Checkpoint
	if err := s.Log.ScanCheckpoints(t.Context(), func(c storage.Checkpoint) error { out = append(out, c); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// rawExec runs a statement on LogStores.DB; q must have no parameters
// (placeholders differ between the drivers).
func rawExec(t *testing.T, s LogStores, q string) {
	t.Helper()
	if _, err := s.DB.ExecContext(t.Context(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func rawCount(t *testing.T, s LogStores, table string) int64 {
	t.Helper()
	var n int64
	if err := s.DB.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil { // constant table names
		t.Fatal(err)
	}
	return n
}

func seqsOf(ls []storage.LogLeaf) []int64 {
	out := make([]int64, len(ls))
	for i, l := range ls {
		out[i] = l.Seq
	}
	return out
}

func equalSeqs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalBundle(a, b storage.Bundle) bool {
	return a.N == b.N && a.Width == b.Width && bytes.Equal(a.Sealed, b.Sealed)
}

func equalBundles(a, b []storage.Bundle) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !equalBundle(a[i], b[i]) {
			return false
		}
	}
	return true
}

func bundleNs(bs []storage.Bundle) []int64 {
	out := make([]int64, len(bs))
	for i, b := range bs {
		out[i] = b.N
	}
	return out
}

func equalTile(a, b storage.Tile) bool {
	return a.Level == b.Level && a.N == b.N && a.Width == b.Width && bytes.Equal(a.Data, b.Data)
}

func equalTiles(a, b []storage.Tile) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !equalTile(a[i], b[i]) {
			return false
		}
	}
	return true
}

func tileNs(ts []storage.Tile) []int64 {
	out := make([]int64, len(ts))
	for i, x := range ts {
		out[i] = x.N
	}
	return out
}

func equalCheckpoint(a, b storage.Checkpoint) bool {
	return a.Size == b.Size && bytes.Equal(a.Root, b.Root) && bytes.Equal(a.Note, b.Note) && a.Created.Equal(b.Created)
}
