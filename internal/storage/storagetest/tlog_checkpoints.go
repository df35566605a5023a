package storagetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// logCheckpoints is the "checkpoints" case of RunLog.
func logCheckpoints(t *testing.T, open func(t *testing.T) LogStores) {
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
}
