package storagetest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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
	t.Run("empty", func(t *testing.T) { logEmpty(t, open) })
	t.Run("pending", func(t *testing.T) { logPending(t, open) })
	t.Run("pending paging", func(t *testing.T) { logPendingPaging(t, open) })
	t.Run("remove", func(t *testing.T) { logRemove(t, open) })
	t.Run("legacy", func(t *testing.T) { logLegacy(t, open) })
	t.Run("bundles", func(t *testing.T) { logBundles(t, open) })
	t.Run("bundle paging", func(t *testing.T) { logBundlePaging(t, open) })
	t.Run("tiles", func(t *testing.T) { logTiles(t, open) })
	t.Run("tile paging", func(t *testing.T) { logTilePaging(t, open) })
	t.Run("checkpoints", func(t *testing.T) { logCheckpoints(t, open) })
	t.Run("rollback", func(t *testing.T) { logRollback(t, open) })
	t.Run("integrate", func(t *testing.T) { logIntegrate(t, open) })
	t.Run("concurrent integrators", func(t *testing.T) { logConcurrentIntegrators(t, open) })
}

// logEmpty is the "empty" case of RunLog.
func logEmpty(t *testing.T, open func(t *testing.T) LogStores) {
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
}

// logRollback is the "rollback" case of RunLog.
func logRollback(t *testing.T, open func(t *testing.T) LogStores) {
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
}

// logIntegrate is the "integrate" case of RunLog.
func logIntegrate(t *testing.T, open func(t *testing.T) LogStores) {
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
	if !slices.Equal(sizes, []int64{70, 140, 210, 280, 300}) {
		t.Errorf("checkpoint sizes %v", sizes)
	}
}

// logConcurrentIntegrators is the "concurrent integrators" case of RunLog.
func logConcurrentIntegrators(t *testing.T, open func(t *testing.T) LogStores) {
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
	if got := seqsOf(pending(t, s, len(seqs)+10)); !slices.Equal(got, seqs) {
		t.Errorf("pending %v, want %v", got, seqs)
	}
	if got := seqsOf(scanPending(t, s)); !slices.Equal(got, seqs) {
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

func equalBundle(a, b storage.Bundle) bool {
	return a.N == b.N && a.Width == b.Width && bytes.Equal(a.Sealed, b.Sealed)
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
