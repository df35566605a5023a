package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/phivault/phivault/internal/storage"
)

// logBundles is the "bundles" case of RunLog.
func logBundles(t *testing.T, open func(t *testing.T) LogStores) {
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
}

// logBundlePaging is the "bundle paging" case of RunLog.
func logBundlePaging(t *testing.T, open func(t *testing.T) LogStores) {
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
	if got := scanBundles(t, s, 0, 1000); !slices.EqualFunc(got, all, equalBundle) {
		t.Errorf("ScanBundles [0,1000): %v, want %v", bundleNs(got), bundleNs(all))
	}
	// [5, 68): bundles 5..67 without 33.
	if got := scanBundles(t, s, 5, 68); !slices.EqualFunc(got, all[5:67], equalBundle) {
		t.Errorf("ScanBundles [5,68): %v, want %v", bundleNs(got), bundleNs(all[5:67]))
	}
	// [30, 64): exactly 33 bundles but the gap, across a page.
	if got := scanBundles(t, s, 30, 65); !slices.EqualFunc(got, all[30:64], equalBundle) {
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
}
