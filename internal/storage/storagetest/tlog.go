package storagetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// LogStores is what RunLog needs: a store to append audit records to
// and the transparency log store on the same database.
type LogStores struct {
	Store storage.Store
	Log   storage.LogStore
}

// RunLog is the conformance suite of storage.LogStore (ADR 0010): leaf
// indexes are assigned once and only inside Integrate, hashes and
// checkpoints read back as written, and a failed integration leaves
// nothing behind.
func RunLog(t *testing.T, open func(t *testing.T) LogStores) {
	t.Run("empty", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		if _, err := s.Log.LatestCheckpoint(ctx); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("LatestCheckpoint on an empty log: %v, want ErrNotFound", err)
		}
		if n, err := s.Log.CountPending(ctx); err != nil || n != 0 {
			t.Errorf("CountPending: %d, %v", n, err)
		}
		err := s.Log.Integrate(ctx, func(tx storage.LogTx) error {
			if n, err := tx.Size(ctx); err != nil || n != 0 {
				t.Errorf("Size: %d, %v", n, err)
			}
			_, err := tx.Latest(ctx)
			if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Latest: %v, want ErrNotFound", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("integrate", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		h := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
		recs := []storage.AuditRecord{
			{Time: time.UnixMicro(1).UTC(), Body: []byte("b0"), LeafHash: h(0)},
			{Time: time.UnixMicro(2).UTC(), Body: []byte("b1"), LeafHash: h(1)},
			{Time: time.UnixMicro(3).UTC(), Body: []byte("legacy")}, // no leaf hash
			{Time: time.UnixMicro(4).UTC(), Body: []byte("b3"), LeafHash: h(3)},
		}
		if err := s.Store.AppendAudit(ctx, recs...); err != nil {
			t.Fatal(err)
		}
		var pending []storage.LogLeaf
		err := s.Log.Integrate(ctx, func(tx storage.LogTx) error {
			var err error
			pending, err = tx.Pending(ctx, 10)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != 4 {
			t.Fatalf("%d pending, want 4", len(pending))
		}
		for i, p := range pending {
			if p.Index != -1 || (i > 0 && p.Seq <= pending[i-1].Seq) {
				t.Errorf("pending %d: %+v (not in sequence order, or indexed)", i, p)
			}
			if i == 2 && !bytes.Equal(p.Body, []byte("legacy")) {
				t.Errorf("a legacy record's body was not returned: %q", p.Body)
			}
			if i != 2 && (p.Body != nil || !bytes.Equal(p.LeafHash, recs[i].LeafHash)) {
				t.Errorf("pending %d: body %q, leaf hash %x", i, p.Body, p.LeafHash)
			}
		}
		seqs := []int64{pending[0].Seq, pending[1].Seq, pending[2].Seq}

		// A failed integration changes nothing, even after Assign.
		boom := errors.New("boom")
		err = s.Log.Integrate(ctx, func(tx storage.LogTx) error {
			if err := tx.Assign(ctx, 0, seqs); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("failed integration: %v", err)
		}
		if n, _ := s.Log.CountPending(ctx); n != 4 {
			t.Fatalf("a failed integration left %d pending, want 4", n)
		}

		cp := storage.Checkpoint{Size: 3, Root: h(9), Note: []byte("note 3\n"), Created: time.UnixMicro(5).UTC()}
		err = s.Log.Integrate(ctx, func(tx storage.LogTx) error {
			if err := tx.Assign(ctx, 0, seqs); err != nil {
				return err
			}
			if err := tx.PutHashes(ctx, 0, [][]byte{h(10), h(11), h(12), h(13)}); err != nil {
				return err
			}
			got, err := tx.ReadHashes(ctx, []int64{3, 0})
			if err != nil || !bytes.Equal(got[0], h(13)) || !bytes.Equal(got[1], h(10)) {
				t.Errorf("ReadHashes in the transaction: %x, %v", got, err)
			}
			return tx.PutCheckpoint(ctx, cp)
		})
		if err != nil {
			t.Fatal(err)
		}
		// Indexes are set once: a second Assign of an indexed record fails.
		err = s.Log.Integrate(ctx, func(tx storage.LogTx) error { return tx.Assign(ctx, 3, seqs[:1]) })
		if !errors.Is(err, storage.ErrConflict) {
			t.Errorf("re-assigning an indexed record: %v, want ErrConflict", err)
		}
		err = s.Log.Integrate(ctx, func(tx storage.LogTx) error { return tx.PutCheckpoint(ctx, cp) })
		if !errors.Is(err, storage.ErrConflict) {
			t.Errorf("a second checkpoint of one size: %v, want ErrConflict", err)
		}
		err = s.Log.Integrate(ctx, func(tx storage.LogTx) error {
			if n, err := tx.Size(ctx); err != nil || n != 3 {
				t.Errorf("Size: %d, %v", n, err)
			}
			if c, err := tx.Latest(ctx); err != nil || c.Size != 3 {
				t.Errorf("Latest: %+v, %v", c, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}

		var leaves []storage.LogLeaf
		if err := s.Log.ScanLeaves(ctx, 0, 100, func(l storage.LogLeaf) error { leaves = append(leaves, l); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(leaves) != 3 {
			t.Fatalf("%d leaves, want 3", len(leaves))
		}
		for i, l := range leaves {
			if l.Index != int64(i) || l.Seq != seqs[i] || !bytes.Equal(l.Body, recs[i].Body) {
				t.Errorf("leaf %d: %+v", i, l)
			}
		}
		if i, err := s.Log.LeafIndexOf(ctx, seqs[2]); err != nil || i != 2 {
			t.Errorf("LeafIndexOf(indexed): %d, %v", i, err)
		}
		if i, err := s.Log.LeafIndexOf(ctx, pending[3].Seq); err != nil || i != -1 {
			t.Errorf("LeafIndexOf(pending): %d, %v", i, err)
		}
		if _, err := s.Log.LeafIndexOf(ctx, 1<<40); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("LeafIndexOf(unknown): %v", err)
		}
		if _, err := s.Log.ReadHashes(ctx, []int64{1, 7}); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("ReadHashes of a missing id: %v, want ErrNotFound", err)
		}
		var ids []int64
		if err := s.Log.ScanHashes(ctx, 1, 3, func(id int64, _ []byte) error { ids = append(ids, id); return nil }); err != nil || len(ids) != 2 || ids[0] != 1 {
			t.Errorf("ScanHashes [1,3): %v, %v", ids, err)
		}
		var pend []int64
		if err := s.Log.ScanPending(ctx, func(l storage.LogLeaf) error { pend = append(pend, l.Seq); return nil }); err != nil || len(pend) != 1 || pend[0] != pending[3].Seq {
			t.Errorf("ScanPending: %v, %v", pend, err)
		}
		got, err := s.Log.CheckpointAt(ctx, 3)
		if err != nil || !bytes.Equal(got.Note, cp.Note) || !bytes.Equal(got.Root, cp.Root) || !got.Created.Equal(cp.Created) {
			t.Errorf("CheckpointAt: %+v, %v", got, err)
		}
		if _, err := s.Log.CheckpointAt(ctx, 2); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("CheckpointAt(2): %v", err)
		}
	})

	t.Run("assign runs", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		for range 5 {
			if err := s.Store.AppendAudit(ctx, storage.AuditRecord{Time: time.UnixMicro(1), Body: []byte("x"), LeafHash: make([]byte, 32)}); err != nil {
				t.Fatal(err)
			}
		}
		var p []storage.LogLeaf
		err := s.Log.Integrate(ctx, func(tx storage.LogTx) error {
			var err error
			if p, err = tx.Pending(ctx, 10); err != nil {
				return err
			}
			// Records 0, 2, 3 (two runs), then 4 and 1 out of seq order.
			return tx.Assign(ctx, 0, []int64{p[0].Seq, p[2].Seq, p[3].Seq, p[4].Seq, p[1].Seq})
		})
		if err != nil {
			t.Fatal(err)
		}
		want := map[int64]int64{p[0].Seq: 0, p[2].Seq: 1, p[3].Seq: 2, p[4].Seq: 3, p[1].Seq: 4}
		for seq, idx := range want {
			if got, err := s.Log.LeafIndexOf(ctx, seq); err != nil || got != idx {
				t.Errorf("record %d: leaf %d, %v; want %d", seq, got, err, idx)
			}
		}
	})
}
