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
		// The kept checkpoint deleted too: refused (ADR 0016: its absence
		// is an alarm once it was kept), and accepting the emptied log
		// is refused while the witness's (size 10) is left.
		if err := os.Remove(anchor.Path); err != nil {
			t.Fatal(err)
		}
		if _, err := in.IntegrateAll(ctx); !errors.Is(err, merkle.ErrAnchorMissing) || !errors.Is(in.Alarm(), merkle.ErrAnchorMissing) {
			t.Errorf("with the kept checkpoint deleted: %v, alarm %v; want ErrAnchorMissing", err, in.Alarm())
		}
		if _, err := newIntegrator().IntegrateAll(ctx); !errors.Is(err, merkle.ErrAnchorMissing) {
			t.Errorf("restarted with the kept checkpoint deleted: %v, want ErrAnchorMissing", err)
		}
		if _, err := in.Accept(ctx); !errors.Is(err, merkle.ErrRollback) {
			t.Errorf("accepting the emptied log with the witness's checkpoint left: %v, want ErrRollback", err)
		}
		if _, err := os.Stat(anchor.Path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused accept kept a checkpoint: %v", err)
		}
		// A new log grown past 10 under the same key does not extend it;
		// the operator accepts it explicitly.
		if err := os.Remove(witnessPath); err != nil {
			t.Fatal(err)
		}
		c.appendEvents(t, d.st, 100, 120)
		if _, err := in.IntegrateAll(ctx); !errors.Is(err, merkle.ErrAnchorMissing) {
			t.Fatalf("a new log with nothing kept: %v, want ErrAnchorMissing", err)
		}
		acc, err := in.Accept(ctx)
		if err != nil || acc.Size != 0 || in.Alarm() != nil {
			t.Fatalf("accepting the emptied log: %+v, %v, alarm %v; want size 0", acc, err, in.Alarm())
		}
		if got, err := anchor.Load(); err != nil || string(got) != string(acc.Note) {
			t.Fatalf("accepted checkpoint not kept: %v", err)
		}
		if _, err := in.Accept(ctx); err == nil {
			t.Error("accepted again over a kept checkpoint")
		}
		if _, err := in.IntegrateAll(ctx); err != nil || in.Alarm() != nil {
			t.Fatalf("a new log accepted: %v, alarm %v", err, in.Alarm())
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

// splitAnchor reads the kept checkpoint from one file and writes it to
// another: a FileAnchor whose writes fail while reads succeed (a
// read-only or full file system) is made by pointing save at a path
// whose parent is a regular file, which fails even as root.
type splitAnchor struct{ load, save merkle.FileAnchor }

func (a splitAnchor) Load() ([]byte, error)  { return a.load.Load() }
func (a splitAnchor) Save(note []byte) error { return a.save.Save(note) }
func (a splitAnchor) Name() string           { return a.save.Name() }

// TestIntegratorStopsWhenTheCheckpointCannotBeKept (SRE fault test 2):
// a signed checkpoint that cannot be kept outside the database raised
// only a log line, and the integrator went on signing checkpoints it
// could not keep. Now it raises the alarm and signs nothing more until
// the checkpoint is kept; appended records stay pending and are
// integrated once it can write again. A kept checkpoint that cannot be
// read (its path replaced by a directory) is the same alarm.
func TestIntegratorStopsWhenTheCheckpointCannotBeKept(t *testing.T) {
	drivers(t, func(t *testing.T, open func(t testing.TB) *db) {
		ctx := context.Background()
		c := newCrypt(t)
		d := open(t)
		dir := t.TempDir()
		good := merkle.FileAnchor{Path: filepath.Join(dir, "log-checkpoint")}
		blocker := filepath.Join(dir, "not-a-directory")
		if err := os.WriteFile(blocker, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		bad := merkle.FileAnchor{Path: filepath.Join(blocker, "log-checkpoint")}
		var anchor merkle.Anchor = good
		in, err := merkle.NewIntegrator(merkle.IntegratorOptions{Store: d.st.TLog(), Signer: c.signer, Origin: testOrigin, Opener: c.log,
			Verifier: c.verifier(t), Anchor: anchorFunc(func() merkle.Anchor { return anchor })})
		if err != nil {
			t.Fatal(err)
		}
		c.appendEvents(t, d.st, 0, 5)
		if _, err := in.IntegrateAll(ctx); err != nil {
			t.Fatal(err)
		}
		kept, err := good.Load()
		if err != nil || kept == nil {
			t.Fatalf("nothing kept: %v", err)
		}

		// Writes fail: the checkpoint of size 8 is signed (the commit
		// precedes the save) but not kept: alarm.
		anchor = splitAnchor{load: good, save: bad}
		c.appendEvents(t, d.st, 5, 8)
		if _, err := in.IntegrateAll(ctx); !errors.Is(err, merkle.ErrAnchorIO) || !errors.Is(in.Alarm(), merkle.ErrAnchorIO) {
			t.Fatalf("a checkpoint that cannot be kept: %v, alarm %v; want ErrAnchorIO", err, in.Alarm())
		}
		// Nothing more is signed while it cannot be kept; records stay
		// pending.
		c.appendEvents(t, d.st, 8, 12)
		for range 2 {
			if _, err := in.IntegrateAll(ctx); !errors.Is(err, merkle.ErrAnchorIO) || !errors.Is(in.Alarm(), merkle.ErrAnchorIO) {
				t.Fatalf("integrating while the checkpoint cannot be kept: %v, alarm %v; want ErrAnchorIO", err, in.Alarm())
			}
		}
		if cp, err := d.st.TLog().LatestCheckpoint(ctx); err != nil || cp.Size != 8 {
			t.Errorf("latest checkpoint %d, %v; want 8 (nothing signed after the failed save)", cp.Size, err)
		}
		if n, err := d.st.TLog().CountPending(ctx); err != nil || n != 4 {
			t.Errorf("%d records pending, %v; want 4", n, err)
		}

		// Unreadable (a directory in its place): the same alarm.
		anchor = good
		if err := os.Remove(good.Path); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(good.Path, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := in.IntegrateAll(ctx); !errors.Is(err, merkle.ErrAnchorIO) {
			t.Fatalf("an unreadable kept checkpoint: %v, want ErrAnchorIO", err)
		}

		// Writable again (the file restored): the checkpoint of size 8
		// is kept first, then the pending records are integrated.
		if err := os.Remove(good.Path); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(good.Path, kept, 0o600); err != nil {
			t.Fatal(err)
		}
		size, err := in.IntegrateAll(ctx)
		if err != nil || size != 12 || in.Alarm() != nil {
			t.Fatalf("after recovery: size %d, %v, alarm %v; want 12", size, err, in.Alarm())
		}
		now, err := good.Load()
		if err != nil {
			t.Fatal(err)
		}
		if cp, err := merkle.OpenCheckpoint(now, testOrigin, c.verifier(t)); err != nil || cp.Size != 12 {
			t.Errorf("kept checkpoint after recovery: size %d, %v; want 12", cp.Size, err)
		}
	})
}

// anchorFunc is an Anchor that delegates to the one f returns, so a
// test can change the file behind a running integrator.
type anchorFunc func() merkle.Anchor

func (f anchorFunc) Load() ([]byte, error)  { return f().Load() }
func (f anchorFunc) Save(note []byte) error { return f().Save(note) }
func (f anchorFunc) Name() string           { return f().Name() }

// TestIntegratorMissingCheckpoint (SRE fault test 1): deleting the kept
// checkpoint used to make the integrator sign on and keep a new one, so
// deleting one file (with the log tables emptied) defeated the rewrite
// protection. A new database creates it at its first integration; a
// log signed by a version that kept none (migration 0024: "upgrade")
// keeps its latest checkpoint once; from then on its absence is an
// alarm until an operator accepts the log (Accept).
func TestIntegratorMissingCheckpoint(t *testing.T) {
	drivers(t, func(t *testing.T, open func(t testing.TB) *db) {
		ctx := context.Background()
		c := newCrypt(t)
		d := open(t)
		anchor := merkle.FileAnchor{Path: filepath.Join(t.TempDir(), "log-checkpoint")}
		newIntegrator := func() *merkle.Integrator {
			in, err := merkle.NewIntegrator(merkle.IntegratorOptions{Store: d.st.TLog(), Signer: c.signer, Origin: testOrigin, Opener: c.log,
				Verifier: c.verifier(t), Anchor: anchor})
			if err != nil {
				t.Fatal(err)
			}
			return in
		}
		// New database: the first integration keeps the empty tree's.
		if _, err := newIntegrator().IntegrateAll(ctx); err != nil {
			t.Fatal(err)
		}
		if b, err := anchor.Load(); err != nil || b == nil {
			t.Fatalf("a new database kept no checkpoint: %v", err)
		}
		c.appendEvents(t, d.st, 0, 3)
		if _, err := newIntegrator().IntegrateAll(ctx); err != nil {
			t.Fatal(err)
		}
		// Deleted: refused, nothing signed, records pending.
		if err := os.Remove(anchor.Path); err != nil {
			t.Fatal(err)
		}
		c.appendEvents(t, d.st, 3, 5)
		in := newIntegrator()
		if _, err := in.IntegrateAll(ctx); !errors.Is(err, merkle.ErrAnchorMissing) || !errors.Is(in.Alarm(), merkle.ErrAnchorMissing) {
			t.Fatalf("kept checkpoint deleted: %v, alarm %v; want ErrAnchorMissing", err, in.Alarm())
		}
		if _, err := os.Stat(anchor.Path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a checkpoint was kept anew: %v", err)
		}
		if n, err := d.st.TLog().CountPending(ctx); err != nil || n != 2 {
			t.Errorf("%d records pending, %v; want 2", n, err)
		}
		// The log tables emptied as well: still refused.
		for _, tbl := range []string{"tlog_bundles", "tlog_tiles", "tlog_checkpoints", "audit_events"} {
			d.exec(t, "DELETE FROM "+tbl)
		}
		if _, err := newIntegrator().IntegrateAll(ctx); !errors.Is(err, merkle.ErrAnchorMissing) {
			t.Fatalf("kept checkpoint deleted and log emptied: %v, want ErrAnchorMissing", err)
		}
		if _, err := d.st.TLog().LatestCheckpoint(ctx); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("a checkpoint was signed over the emptied log: %v", err)
		}

		// Upgrade: a signed log without a kept checkpoint is kept once.
		c.appendEvents(t, d.st, 10, 14)
		if _, err := in.Accept(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := in.IntegrateAll(ctx); err != nil {
			t.Fatal(err)
		}
		latest, err := d.st.TLog().LatestCheckpoint(ctx)
		if err != nil || latest.Size != 4 {
			t.Fatalf("latest %d, %v; want 4", latest.Size, err)
		}
		os.Remove(anchor.Path)
		d.exec(t, "UPDATE tlog_anchor SET state = 'upgrade'")
		if _, err := newIntegrator().IntegrateAll(ctx); err != nil {
			t.Fatalf("first start after an upgrade: %v", err)
		}
		if b, err := anchor.Load(); err != nil || string(b) != string(latest.Note) {
			t.Fatalf("the upgrade did not keep the latest checkpoint: %v", err)
		}
		os.Remove(anchor.Path)
		if _, err := newIntegrator().IntegrateAll(ctx); !errors.Is(err, merkle.ErrAnchorMissing) {
			t.Fatalf("deleted after the upgrade kept it: %v, want ErrAnchorMissing", err)
		}
		// Without the database's record: fail closed.
		d.exec(t, "DELETE FROM tlog_anchor")
		if _, err := newIntegrator().IntegrateAll(ctx); !errors.Is(err, merkle.ErrAnchorMissing) {
			t.Fatalf("no anchor state: %v, want ErrAnchorMissing", err)
		}
	})
}
