package merkle_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/storage"
)

// TestIntegrateThenVerify appends events in uneven batches, integrates
// between them, and checks what a user of the log sees: one checkpoint
// per integration, signed, whose roots are those of the events in
// sequence order; Verify agrees; proofs check.
func TestIntegrateThenVerify(t *testing.T) {
	drivers(t, func(t *testing.T, open func(testing.TB) *db) {
		c := newCrypt(t)
		d := open(t)
		in := c.integrator(t, d.st)
		ctx := t.Context()

		// The empty tree is checkpointed once.
		if _, size, err := in.Integrate(ctx); err != nil || size != 0 {
			t.Fatalf("first integration: size %d, %v", size, err)
		}
		bounds := []int{0, 1, 2, 3, 200, 256, 257, 600, 1000}
		for i := 1; i < len(bounds); i++ {
			c.appendEvents(t, d.st, bounds[i-1], bounds[i])
			if _, err := in.IntegrateAll(ctx); err != nil {
				t.Fatal(err)
			}
		}
		// Nothing pending: no new checkpoint.
		if n, _, err := in.Integrate(ctx); err != nil || n != 0 {
			t.Fatalf("idle integration: %d, %v", n, err)
		}

		// Independent recomputation: leaf i is the i-th event's leaf.
		var hashes []tlog.Hash
		var sizes []int64
		err := d.st.TLog().ScanCheckpoints(ctx, func(cp storage.Checkpoint) error {
			sizes = append(sizes, cp.Size)
			v, _ := note.NewVerifier(c.signer.VerifierKey())
			n, err := note.Open(cp.Note, note.VerifierList(v))
			if err != nil {
				t.Errorf("checkpoint %d: %v", cp.Size, err)
			}
			if n != nil && !bytes.HasPrefix([]byte(n.Text), []byte(testOrigin+"\n")) {
				t.Errorf("checkpoint %d: text %q does not start with the origin", cp.Size, n.Text)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []int64{0, 1, 2, 3, 200, 256, 257, 600, 1000}
		if len(sizes) != len(want) {
			t.Fatalf("checkpoint sizes %v, want %v", sizes, want)
		}
		// Every event is in its sealed entry bundle and nowhere else.
		if n, err := d.st.TLog().CountPending(ctx); err != nil || n != 0 {
			t.Fatalf("pending records after integration: %d %v", n, err)
		}
		var rows int
		if err := d.raw.QueryRow("SELECT COUNT(*) FROM audit_events").Scan(&rows); err != nil || rows != 0 {
			t.Fatalf("audit_events rows after integration: %d %v", rows, err)
		}
		err = merkle.NewReader(d.st.TLog(), c.log).ScanLeaves(ctx, 0, 1000, func(i int64, leaf []byte, legacy bool) error {
			if legacy || !bytes.Contains(leaf, fmt.Appendf(nil, `"request_id":"req-%d"`, i)) {
				t.Fatalf("leaf %d: legacy=%v, or not the %dth event", i, legacy, i)
			}
			hs, err := tlog.StoredHashes(i, leaf, tlog.HashReaderFunc(func(ids []int64) ([]tlog.Hash, error) {
				out := make([]tlog.Hash, len(ids))
				for i, id := range ids {
					out[i] = hashes[id]
				}
				return out, nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			hashes = append(hashes, hs...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		hr := tlog.HashReaderFunc(func(ids []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(ids))
			for i, id := range ids {
				out[i] = hashes[id]
			}
			return out, nil
		})
		for _, size := range want {
			cp, err := d.st.TLog().CheckpointAt(ctx, size)
			if err != nil {
				t.Fatal(err)
			}
			root, _ := tlog.TreeHash(size, hr)
			if !bytes.Equal(root[:], cp.Root) {
				t.Errorf("checkpoint %d: root differs from the recomputed tree", size)
			}
		}

		rep, err := c.verify(t, d.st, c.signer.VerifierKey())
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if rep.Leaves != 1000 || rep.Checkpoints != len(want) || rep.Pending != 0 {
			t.Errorf("report %+v", rep)
		}

		// Proofs from the reader check with tlog alone.
		r := merkle.NewReader(d.st.TLog(), c.log)
		for _, tc := range []struct{ index, size int64 }{{0, 1}, {0, 1000}, {255, 256}, {256, 257}, {999, 1000}, {123, 600}} {
			b, err := r.InclusionProof(ctx, merkle.InclusionRequest{Index: tc.index, Size: tc.size})
			if err != nil {
				t.Fatal(err)
			}
			p, err := merkle.ParseInclusionProof(b)
			if err != nil {
				t.Fatal(err)
			}
			v, _ := merkle.NewVerifier(c.signer.VerifierKey())
			cp, err := merkle.OpenCheckpoint(p.Checkpoint, testOrigin, v)
			if err != nil || cp.Size != tc.size {
				t.Fatalf("proof checkpoint: %+v %v", cp, err)
			}
			if err := tlog.CheckRecord(p.Proof, cp.Size, cp.Root, p.Index, hashes[tlog.StoredHashIndex(0, tc.index)]); err != nil {
				t.Errorf("inclusion %d in %d: %v", tc.index, tc.size, err)
			}
		}
		if _, err := r.InclusionProof(ctx, merkle.InclusionRequest{Index: 5, Size: 4}); !errors.Is(err, merkle.ErrNotFound) {
			t.Errorf("proof for a size without checkpoint: %v, want ErrNotFound", err)
		}
		b, err := r.ConsistencyProof(ctx, merkle.ConsistencyRequest{Old: 3, New: 1000})
		if err != nil {
			t.Fatal(err)
		}
		p, err := merkle.ParseConsistencyProof(b)
		if err != nil {
			t.Fatal(err)
		}
		r3, _ := tlog.TreeHash(3, hr)
		r1000, _ := tlog.TreeHash(1000, hr)
		if err := tlog.CheckTree(p, 1000, r1000, 3, r3); err != nil {
			t.Errorf("consistency 3..1000: %v", err)
		}
		// Tiles: the full level-0 tile holds leaf hashes 0..255.
		tile, err := r.Tile(ctx, tlog.Tile{H: 8, L: 0, N: 0, W: 256})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(tile[32*7:32*8], hashes[tlog.StoredHashIndex(0, 7)][:]) {
			t.Errorf("tile 0/000 entry 7 is not leaf 7's hash")
		}
		if _, err := r.Tile(ctx, tlog.Tile{H: 8, L: 0, N: 3, W: 256}); !errors.Is(err, merkle.ErrNotFound) {
			t.Errorf("tile beyond the tree: %v, want ErrNotFound", err)
		}
		bundle, err := r.EntryBundle(ctx, tlog.Tile{H: 8, L: -1, N: 0, W: 3})
		if err != nil {
			t.Fatal(err)
		}
		if n := int(bundle[0])<<8 | int(bundle[1]); n < 16 || tlog.RecordHash(bundle[2:2+n]) != hashes[0] {
			t.Errorf("entry bundle's first entry is not leaf 0")
		}
	})
}

// TestEventProof is the patient view's check of one event: the event
// bytes, the salt in the proof's extra line and the embedded signed
// checkpoint are enough to prove the event is in the log.
func TestEventProof(t *testing.T) {
	c := newCrypt(t)
	d := openSQLite(t)
	c.appendEvents(t, d.st, 0, 300)
	if _, err := c.integrator(t, d.st).IntegrateAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := merkle.NewReader(d.st.TLog(), c.log)
	ep, err := r.LeafProof(t.Context(), 123, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(ep.Event, []byte(`"request_id":"req-123"`)) {
		t.Errorf("event %s", ep.Event)
	}
	p, err := merkle.ParseInclusionProof(ep.Proof)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := merkle.NewVerifier(c.signer.VerifierKey())
	cp, err := merkle.OpenCheckpoint(p.Checkpoint, testOrigin, v)
	if err != nil {
		t.Fatal(err)
	}
	leaf := tlog.RecordHash(append(append([]byte{}, p.Extra...), ep.Event...))
	if len(p.Extra) != 16 || p.Index != 123 {
		t.Fatalf("extra %d bytes, index %d", len(p.Extra), p.Index)
	}
	if err := merkle.CheckInclusion(p.Proof, cp.Size, cp.Root, p.Index, leaf); err != nil {
		t.Errorf("event proof: %v", err)
	}
	// A changed event no longer matches.
	forged := bytes.Replace(ep.Event, []byte("req-123"), []byte("req-124"), 1)
	if merkle.CheckInclusion(p.Proof, cp.Size, cp.Root, p.Index, tlog.RecordHash(append(append([]byte{}, p.Extra...), forged...))) == nil {
		t.Error("a changed event verified")
	}
	if _, err := r.LeafProof(t.Context(), 300, 0); !errors.Is(err, merkle.ErrNotFound) {
		t.Errorf("leaf beyond the tree: %v", err)
	}
}
