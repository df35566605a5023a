package storagetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/phivault/phivault/internal/storage"
)

// logTiles is the "tiles" case of RunLog.
func logTiles(t *testing.T, open func(t *testing.T) LogStores) {
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
	if err != nil || !slices.EqualFunc(got, want, equalTile) {
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
		if got := scanTiles(t, s, c.level, c.from, c.to); !slices.EqualFunc(got, c.want, equalTile) {
			t.Errorf("ScanTiles level %d [%d,%d): %+v, want %+v", c.level, c.from, c.to, got, c.want)
		}
	}
	calls := 0
	err = s.Log.ScanTiles(ctx, 0, 0, 10, func(storage.Tile) error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Errorf("ScanTiles with a failing fn: %v after %d calls, want boom after 1", err, calls)
	}
}

// logTilePaging is the "tile paging" case of RunLog.
func logTilePaging(t *testing.T, open func(t *testing.T) LogStores) {
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
	if got := scanTiles(t, s, 0, 0, 1000); !slices.EqualFunc(got, l0, equalTile) {
		t.Errorf("ScanTiles level 0 [0,1000): %d tiles %v, want %d", len(got), tileNs(got), len(l0))
	}
	// [10, 290) is 280 tiles: more than a page, from an offset.
	if got := scanTiles(t, s, 0, 10, 290); !slices.EqualFunc(got, l0[10:290], equalTile) {
		t.Errorf("ScanTiles level 0 [10,290): %d tiles, want 280", len(got))
	}
	if got := scanTiles(t, s, 0, 250, 520); !slices.EqualFunc(got, l0[250:], equalTile) {
		t.Errorf("ScanTiles level 0 [250,520): %d tiles, want %d", len(got), len(l0[250:]))
	}
	if got := scanTiles(t, s, 1, 0, 1000); !slices.EqualFunc(got, l1, equalTile) {
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
	if err != nil || !slices.EqualFunc(got, want, equalTile) {
		t.Errorf("ReadTiles of %d tiles: %d, %v", len(refs), len(got), err)
	}
	refs = append(refs, storage.TileRef{Level: 0, N: 300})
	if _, err := s.Log.ReadTiles(ctx, refs); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ReadTiles of %d tiles with one missing: %v, want ErrNotFound", len(refs), err)
	}
}
