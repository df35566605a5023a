package merkle_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/storage"
)

// TestIntegratorKeepsAndHonoursCheckpoints (ADR 0016): the integrator
// saves each checkpoint it signs to its anchor; a witness's checkpoint
// is read, never written; a stored log smaller than either, or not
// extending it, is refused (nothing is signed) and raises the alarm,
// which a later good integration clears.
func TestIntegratorKeepsAndHonoursCheckpoints(t *testing.T) {
	drivers(t, func(t *testing.T, open func(t testing.TB) *db) {
		ctx := context.Background()
		c := newCrypt(t)
		d := open(t)
		dir := t.TempDir()
		anchor := merkle.FileAnchor{Path: filepath.Join(dir, "log-checkpoint")}
		witnessPath := filepath.Join(dir, "witness.checkpoint")
		witness := merkle.ReadOnly{Anchor: merkle.FileAnchor{Path: witnessPath}}
		newIntegrator := func() *merkle.Integrator {
			in, err := merkle.NewIntegrator(merkle.IntegratorOptions{Store: d.st.TLog(), Signer: c.signer, Origin: testOrigin, Opener: c.log,
				Verifier: c.verifier(t), Anchor: anchor, Witnesses: []merkle.Anchor{witness}})
			if err != nil {
				t.Fatal(err)
			}
			return in
		}
		in := newIntegrator()
		c.appendEvents(t, d.st, 0, 10)
		if _, err := in.IntegrateAll(ctx); err != nil {
			t.Fatal(err)
		}
		kept, err := anchor.Load()
		if err != nil || kept == nil {
			t.Fatalf("no checkpoint kept: %v", err)
		}
		cp, err := merkle.OpenCheckpoint(kept, testOrigin, c.verifier(t))
		if err != nil || cp.Size != 10 {
			t.Fatalf("kept checkpoint: size %d, %v", cp.Size, err)
		}
		if _, err := os.Stat(witnessPath); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the witness's checkpoint was written: %v", err)
		}
		// The witness saw size 10; the log grows to 20.
		if err := os.WriteFile(witnessPath, kept, 0o600); err != nil {
			t.Fatal(err)
		}
		c.appendEvents(t, d.st, 10, 20)
		if _, err := in.IntegrateAll(ctx); err != nil || in.Alarm() != nil {
			t.Fatalf("a log extending the kept checkpoints: %v, alarm %v", err, in.Alarm())
		}

		// Emptied: refused, nothing signed, alarm.
		for _, tbl := range []string{"tlog_bundles", "tlog_tiles", "tlog_checkpoints", "audit_events"} {
			d.exec(t, "DELETE FROM "+tbl)
		}
		c.appendEvents(t, d.st, 20, 25)
		in = newIntegrator()
		if _, err := in.IntegrateAll(ctx); !errors.Is(err, merkle.ErrRollback) || !errors.Is(in.Alarm(), merkle.ErrRollback) {
			t.Fatalf("integrating an emptied log: %v, alarm %v; want ErrRollback", err, in.Alarm())
		}
		if _, err := d.st.TLog().LatestCheckpoint(ctx); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("a checkpoint was signed over the emptied log: %v", err)
		}
		// Only the witness's (size 10) is left: still refused.
		if err := os.Remove(anchor.Path); err != nil {
			t.Fatal(err)
		}
		if _, err := in.IntegrateAll(ctx); !errors.Is(err, merkle.ErrRollback) {
			t.Errorf("with the witness's checkpoint only: %v, want ErrRollback", err)
		}
		// A new log grown past 10 under the same key does not extend it.
		if err := os.Remove(witnessPath); err != nil {
			t.Fatal(err)
		}
		c.appendEvents(t, d.st, 100, 120)
		if _, err := in.IntegrateAll(ctx); err != nil || in.Alarm() != nil {
			t.Fatalf("a new log with nothing kept: %v, alarm %v", err, in.Alarm())
		}
		if err := os.WriteFile(witnessPath, kept, 0o600); err != nil {
			t.Fatal(err)
		}
		c.appendEvents(t, d.st, 120, 121)
		if _, err := in.IntegrateAll(ctx); !errors.Is(err, merkle.ErrRewrite) {
			t.Errorf("a log that does not extend the witness's checkpoint: %v, want ErrRewrite", err)
		}
		// A file that is not a checkpoint of this log is refused too.
		if err := os.WriteFile(witnessPath, []byte("not a checkpoint\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := in.IntegrateAll(ctx); !errors.Is(err, merkle.ErrSignature) {
			t.Errorf("a kept file that is not this log's checkpoint: %v, want ErrSignature", err)
		}
		os.Remove(witnessPath)
		if _, err := in.IntegrateAll(ctx); err != nil || in.Alarm() != nil {
			t.Errorf("after the bad file was removed: %v, alarm %v", err, in.Alarm())
		}
		// Verify checks pinned checkpoints the same way.
		v := c.verifier(t)
		if _, err := merkle.Verify(ctx, merkle.VerifyOptions{Store: d.st.TLog(), Opener: c.log, Verifier: v, Origin: testOrigin, Pinned: [][]byte{kept}}); err == nil {
			t.Error("verify accepted a log that does not extend a pinned checkpoint")
		}
	})
}

// TestWatchFindsDeletedPendingRecords: records a process made durable
// and someone deleted before integration are reported; integrated ones,
// pending ones and failed appends are not.
func TestWatchFindsDeletedPendingRecords(t *testing.T) {
	drivers(t, func(t *testing.T, open func(t testing.TB) *db) {
		ctx := context.Background()
		c := newCrypt(t)
		d := open(t)
		in := c.integrator(t, d.st)
		w, err := merkle.NewWatch(ctx, d.st.TLog(), c.log, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		appendWatched := func(from, to int) [][]byte {
			var hs [][]byte
			var recs []storage.AuditRecord
			for i := from; i < to; i++ {
				r, err := c.log.Seal(event(i))
				if err != nil {
					t.Fatal(err)
				}
				recs = append(recs, r)
				hs = append(hs, r.LeafHash)
			}
			w.Expect(hs...)
			err := d.st.AppendAudit(ctx, recs...)
			w.Settle(err == nil, hs...)
			if err != nil {
				t.Fatal(err)
			}
			return hs
		}
		appendWatched(0, 300) // integrated below, across a bundle boundary
		if _, err := in.IntegrateAll(ctx); err != nil {
			t.Fatal(err)
		}
		appendWatched(300, 310) // still pending
		failed := [][]byte{make([]byte, 32)}
		w.Expect(failed...)
		w.Settle(false, failed...)
		if err := w.Check(ctx); err != nil || w.Alarm() != nil {
			t.Fatalf("nothing deleted: %v, %v", err, w.Alarm())
		}
		if _, err := in.IntegrateAll(ctx); err != nil {
			t.Fatal(err)
		}
		appendWatched(310, 313)
		d.exec(t, "DELETE FROM audit_events")
		if err := w.Check(ctx); !errors.Is(err, merkle.ErrVanished) || !errors.Is(w.Alarm(), merkle.ErrVanished) {
			t.Fatalf("three records deleted before integration: %v, alarm %v", err, w.Alarm())
		}
	})
}
