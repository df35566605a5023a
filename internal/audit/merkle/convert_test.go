package merkle_test

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/storage"
)

// previousLayout writes a log of n events as the version before entry
// bundles left it: one audit_events row per leaf with its leaf_index,
// the tree's stored hashes in tlog_hashes and signed checkpoints at the
// sizes given. The first v1 events are sealed in format v1 (the event
// alone, from before the transparency log).
func previousLayout(t *testing.T, c *crypt, d *db, n, v1 int, checkpoints ...int64) {
	t.Helper()
	var hashes []tlog.Hash
	hr := tlog.HashReaderFunc(func(ids []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(ids))
		for i, id := range ids {
			out[i] = hashes[id]
		}
		return out, nil
	})
	for i := range n {
		ev := event(i)
		var rec storage.AuditRecord
		var leaf []byte
		if i < v1 {
			b, err := ev.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			body, err := c.kr.SealAudit("phivault/audit-event/v1", b)
			if err != nil {
				t.Fatal(err)
			}
			rec, leaf = storage.AuditRecord{Time: ev.Time, Body: body}, b
		} else {
			var err error
			if rec, err = c.log.Seal(ev); err != nil {
				t.Fatal(err)
			}
			if leaf, _, err = c.log.OpenLeaf(rec.Body); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.st.AppendAudit(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
		hs, err := tlog.StoredHashes(int64(i), leaf, hr)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hs...)
	}
	d.exec(t, "UPDATE audit_events SET leaf_index = seq - (SELECT MIN(seq) FROM audit_events)")
	for id, h := range hashes {
		d.exec(t, "INSERT INTO tlog_hashes (id, hash) VALUES (?, ?)", int64(id), h[:])
	}
	for _, size := range checkpoints {
		root, err := tlog.TreeHash(size, hr)
		if err != nil {
			t.Fatal(err)
		}
		note, err := merkle.SignCheckpoint(testOrigin, size, root, c.signer)
		if err != nil {
			t.Fatal(err)
		}
		d.exec(t, "INSERT INTO tlog_checkpoints (size, root, note, created_at) VALUES (?, ?, ?, ?)", size, root[:], note, time.Now().UnixMicro())
	}
}

// TestConvertPreviousLayout: the integrator moves a log written before
// entry bundles into bundles and tiles (in several transactions when it
// is longer than MaxBatch), keeps its checkpoints valid, drops the old
// rows and hashes, and then grows the log as usual.
func TestConvertPreviousLayout(t *testing.T) {
	drivers(t, func(t *testing.T, open func(testing.TB) *db) {
		c := newCrypt(t)
		d := open(t)
		previousLayout(t, c, d, 700, 3, 0, 3, 100, 256, 600, 700)
		c.appendEvents(t, d.st, 700, 720) // pending, sequenced after
		if _, err := c.verify(t, d.st, c.signer.VerifierKey()); !errors.Is(err, merkle.ErrConverting) {
			t.Fatalf("Verify before conversion: %v, want ErrConverting", err)
		}
		in, err := merkle.NewIntegrator(merkle.IntegratorOptions{Store: d.st.TLog(), Signer: c.signer, Origin: testOrigin, Opener: c.log, Verifier: c.verifier(t), MaxBatch: 256})
		if err != nil {
			t.Fatal(err)
		}
		size, err := in.IntegrateAll(t.Context())
		if err != nil || size != 720 {
			t.Fatalf("IntegrateAll: size %d, %v", size, err)
		}
		if n, err := d.st.TLog().CountLegacy(t.Context()); err != nil || n != 0 {
			t.Fatalf("records of the previous layout left: %d %v", n, err)
		}
		var hashes int
		if err := d.raw.QueryRow("SELECT COUNT(*) FROM tlog_hashes").Scan(&hashes); err != nil || hashes != 0 {
			t.Fatalf("tlog_hashes rows left: %d %v", hashes, err)
		}
		rep, err := c.verify(t, d.st, c.signer.VerifierKey())
		if err != nil {
			t.Fatalf("Verify after conversion: %v", err)
		}
		if rep.Leaves != 720 || rep.Checkpoints != 7 {
			t.Errorf("report %+v, want 720 leaves and 7 checkpoints", rep)
		}
		// v1 leaves keep their format: the event without a salt.
		r := merkle.NewReader(d.st.TLog(), c.log)
		err = r.ScanLeaves(t.Context(), 0, 5, func(i int64, leaf []byte, v1 bool) error {
			if v1 != (i < 3) {
				t.Errorf("leaf %d: v1 = %v", i, v1)
			}
			if _, ev, err := audit.LeafEvent(leaf, v1); err != nil || ev[0] != '{' {
				t.Errorf("leaf %d: event %q %v", i, ev, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		ep, err := r.LeafProof(t.Context(), 1, 0)
		if err != nil || len(ep.Event) == 0 {
			t.Fatalf("proof of a v1 leaf: %v", err)
		}
	})
}

// TestConvertRefusesTamperedPreviousLayout: a row of the previous layout
// changed, removed or moved before the upgrade stops the conversion,
// which signs nothing and leaves the previous rows for investigation.
func TestConvertRefusesTamperedPreviousLayout(t *testing.T) {
	drivers(t, func(t *testing.T, open func(testing.TB) *db) {
		for name, tamper := range map[string]string{
			"reorder":   "UPDATE audit_events SET leaf_index = CASE leaf_index WHEN 10 THEN 11 WHEN 11 THEN 10 END WHERE leaf_index IN (10, 11)",
			"delete":    "DELETE FROM audit_events WHERE leaf_index = 42",
			"leaf hash": "UPDATE audit_events SET leaf_hash = body WHERE leaf_index = 7",
		} {
			t.Run(name, func(t *testing.T) {
				c := newCrypt(t)
				d := open(t)
				previousLayout(t, c, d, 300, 0, 100, 300)
				d.exec(t, "DROP INDEX audit_events_leaf_index")
				d.exec(t, tamper)
				in := c.integrator(t, d.st)
				if _, err := in.IntegrateAll(t.Context()); !errors.Is(err, merkle.ErrInconsistent) {
					t.Fatalf("IntegrateAll over a tampered previous layout: %v, want ErrInconsistent", err)
				}
				if n, err := d.st.TLog().CountLegacy(t.Context()); err != nil || n < 299 {
					t.Fatalf("records of the previous layout left: %d %v, want them kept", n, err)
				}
			})
		}
	})
}

// TestVerifyNamesStrayPreviousLayoutRow: a row of the previous layout at
// a leaf the bundles already hold is not a conversion in progress (which
// would stop verification) but a divergence.
func TestVerifyNamesStrayPreviousLayoutRow(t *testing.T) {
	drivers(t, func(t *testing.T, open func(testing.TB) *db) {
		c := newCrypt(t)
		d := open(t)
		c.appendEvents(t, d.st, 0, 50)
		if _, err := c.integrator(t, d.st).IntegrateAll(t.Context()); err != nil {
			t.Fatal(err)
		}
		c.appendEvents(t, d.st, 50, 51)
		d.exec(t, "UPDATE audit_events SET leaf_index = 7")
		_, err := c.verify(t, d.st, c.signer.VerifierKey())
		var div *merkle.Divergence
		if !errors.As(err, &div) || div.Index != 7 {
			t.Fatalf("Verify: %v, want a divergence at leaf 7", err)
		}
	})
}
