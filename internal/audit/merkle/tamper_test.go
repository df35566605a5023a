package merkle_test

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/storage"
)

// TestVerifyNamesTampering changes the audit tables directly with SQL,
// as an administrator with database access could (and, in the cases
// marked "with the log key", one who also stole the key that seals the
// events but not the checkpoint signing key), and checks that Verify
// names the first divergence: the leaf, and what differs. The log has
// 300 leaves: entry bundle 0 (leaves 0..255) and the partial bundle 1
// (256..299); checkpoints at 0, 100, 200 and 300.
func TestVerifyNamesTampering(t *testing.T) {
	bundle := func(t *testing.T, d *db, n int64) storage.Bundle {
		var b []storage.Bundle
		if err := d.st.TLog().ScanBundles(t.Context(), n, n+1, func(x storage.Bundle) error { b = append(b, x); return nil }); err != nil || len(b) != 1 {
			t.Fatalf("bundle %d: %v", n, err)
		}
		return b[0]
	}
	leaves := func(t *testing.T, c *crypt, b storage.Bundle) [][]byte {
		ls, _, err := c.log.OpenBundle(b.N, b.Width, b.Sealed)
		if err != nil {
			t.Fatal(err)
		}
		return ls
	}
	reseal := func(t *testing.T, c *crypt, d *db, n int64, ls [][]byte) {
		sealed, err := c.log.SealBundle(n, ls, nil)
		if err != nil {
			t.Fatal(err)
		}
		d.exec(t, "UPDATE tlog_bundles SET width = ?, body = ? WHERE n = ?", len(ls), sealed, n)
	}
	tests := []struct {
		name   string
		tamper func(t *testing.T, c *crypt, d *db, early storage.Bundle) string // returns the text the divergence must contain
	}{
		{"modify a bundle", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			b := bundle(t, d, 0)
			b.Sealed[len(b.Sealed)/2] ^= 1
			d.exec(t, "UPDATE tlog_bundles SET body = ? WHERE n = 0", b.Sealed)
			return "leaf 0: entry bundle 0 (leaves 0..255) does not open with the log key"
		}},
		{"move a bundle", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			d.exec(t, "DELETE FROM tlog_bundles WHERE n = 1")
			d.exec(t, "UPDATE tlog_bundles SET n = 1 WHERE n = 0")
			return "leaf 0: leaf missing"
		}},
		{"copy a bundle over another", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			b := bundle(t, d, 0)
			d.exec(t, "UPDATE tlog_bundles SET width = ?, body = ? WHERE n = 1", b.Width, b.Sealed)
			return "leaf 256: entry bundle 1 (leaves 256..511) does not open with the log key"
		}},
		{"roll a bundle back to an older copy", func(t *testing.T, c *crypt, d *db, early storage.Bundle) string {
			d.exec(t, "UPDATE tlog_bundles SET width = ?, body = ? WHERE n = 0", early.Width, early.Sealed)
			return "leaf 100: leaf missing"
		}},
		{"delete the last bundle", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			d.exec(t, "DELETE FROM tlog_bundles WHERE n = 1")
			return "leaf 256: leaf missing"
		}},
		{"delete the first bundle", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			d.exec(t, "DELETE FROM tlog_bundles WHERE n = 0")
			return "leaf 0: leaf missing"
		}},
		{"add a bundle", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			b := bundle(t, d, 1)
			d.exec(t, "INSERT INTO tlog_bundles (n, width, body) VALUES (?, ?, ?)", 5, b.Width, b.Sealed)
			return "leaf 1280: leaf is beyond the latest checkpoint (size 300)"
		}},
		{"reorder two events (with the log key)", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			ls := leaves(t, c, bundle(t, d, 0))
			ls[10], ls[11] = ls[11], ls[10]
			reseal(t, c, d, 0, ls)
			return "leaf 10: stored hash tile 0/0 differs"
		}},
		{"modify an event (with the log key)", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			ls := leaves(t, c, bundle(t, d, 1))
			ls[5] = append([]byte{}, ls[5]...)
			ls[5][len(ls[5])-2] ^= 1
			reseal(t, c, d, 1, ls)
			return "leaf 261: stored hash tile 0/1 differs"
		}},
		{"delete an event (with the log key)", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			ls := leaves(t, c, bundle(t, d, 1))
			reseal(t, c, d, 1, append(ls[:4:4], ls[5:]...))
			return "leaf 260: stored hash tile 0/1 differs"
		}},
		{"append an event (with the log key)", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			ls := leaves(t, c, bundle(t, d, 1))
			reseal(t, c, d, 1, append(ls, ls[0]))
			return "leaf 300: leaf is beyond the latest checkpoint (size 300)"
		}},
		{"change a leaf hash tile", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			d.exec(t, "UPDATE tlog_tiles SET data = ? WHERE level = 0 AND n = 0", make([]byte, 256*32))
			return "leaf 0: stored hash tile 0/0 differs from the hashes recomputed from the events at its hash 0"
		}},
		{"change an upper tile", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			d.exec(t, "UPDATE tlog_tiles SET data = ? WHERE level = 1 AND n = 0", make([]byte, 32))
			return "leaf 0: stored hash tile 1/0 differs"
		}},
		{"overwrite the last tile", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			d.exec(t, "UPDATE tlog_tiles SET width = 256, data = ? WHERE level = 0 AND n = 1", make([]byte, 256*32))
			return "leaf 256: stored hash tile 0/1 differs"
		}},
		{"widen the last tile", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			tl, err := d.st.TLog().ReadTiles(t.Context(), []storage.TileRef{{Level: 0, N: 1}})
			if err != nil {
				t.Fatal(err)
			}
			d.exec(t, "UPDATE tlog_tiles SET width = 256, data = ? WHERE level = 0 AND n = 1", append(tl[0].Data, make([]byte, (256-tl[0].Width)*32)...))
			return "leaf 256: stored hash tile 0/1 has 256 hashes, more than the tree of the latest checkpoint (size 300)"
		}},
		{"add a tile beyond the tree", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			d.exec(t, "INSERT INTO tlog_tiles (level, n, width, data) VALUES (0, 7, 1, ?)", make([]byte, 32))
			return "leaf 1792: stored hash tile 0/7 has 1 hashes, more than the tree of the latest checkpoint (size 300)"
		}},
		{"delete a tile", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			d.exec(t, "DELETE FROM tlog_tiles WHERE level = 0 AND n = 1")
			return "leaf 256: stored hash tile 0/1 is missing"
		}},
		{"insert a pending record", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			d.exec(t, "INSERT INTO audit_events (recorded_at, body) VALUES (?, ?)", int64(1), []byte("forged event"))
			return "record not yet integrated, and its sealed body does not open"
		}},
		{"copy a pending record's body over another's", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			c.appendEvents(t, d.st, 300, 302)
			var bodies [][]byte
			if err := d.st.TLog().ScanPending(t.Context(), func(l storage.LogLeaf) error { bodies = append(bodies, l.Body); return nil }); err != nil || len(bodies) != 2 {
				t.Fatalf("pending: %d %v", len(bodies), err)
			}
			d.exec(t, "UPDATE audit_events SET body = ? WHERE leaf_index IS NULL AND seq = (SELECT MAX(seq) FROM audit_events)", bodies[0])
			return "record not yet integrated, and its stored leaf hash differs"
		}},
		{"copy a pending record", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			c.appendEvents(t, d.st, 300, 301)
			d.exec(t, "INSERT INTO audit_events (recorded_at, body, leaf_hash) SELECT recorded_at, body, leaf_hash FROM audit_events")
			return "holds the same leaf as record"
		}},
		{"change a checkpoint root", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			d.exec(t, "UPDATE tlog_checkpoints SET root = ? WHERE size = 200", make([]byte, 32))
			return "checkpoint of size 200: the stored size or root differs from the signed note"
		}},
		{"change a checkpoint note", func(t *testing.T, c *crypt, d *db, _ storage.Bundle) string {
			d.exec(t, "UPDATE tlog_checkpoints SET note = ? WHERE size = 100", []byte(testOrigin+"\n100\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— "+testOrigin+" AAAA\n"))
			return "checkpoint of size 100: signature does not verify"
		}},
	}
	drivers(t, func(t *testing.T, open func(testing.TB) *db) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := newCrypt(t)
				d := open(t)
				in := c.integrator(t, d.st)
				var early storage.Bundle
				for i, b := range [][2]int{{0, 100}, {100, 200}, {200, 300}} {
					c.appendEvents(t, d.st, b[0], b[1])
					if _, err := in.IntegrateAll(t.Context()); err != nil {
						t.Fatal(err)
					}
					if i == 0 {
						early = bundle(t, d, 0)
					}
				}
				if _, err := c.verify(t, d.st, c.signer.VerifierKey()); err != nil {
					t.Fatalf("before tampering: %v", err)
				}
				want := tt.tamper(t, c, d, early)
				_, err := c.verify(t, d.st, c.signer.VerifierKey())
				var div *merkle.Divergence
				if !errors.As(err, &div) {
					t.Fatalf("Verify after tampering: %v, want a divergence", err)
				}
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Verify: %v\nwant it to contain %q", err, want)
				}
			})
		}
		t.Run("wrong verifier key", func(t *testing.T) {
			c := newCrypt(t)
			d := open(t)
			c.appendEvents(t, d.st, 0, 10)
			if _, err := c.integrator(t, d.st).IntegrateAll(t.Context()); err != nil {
				t.Fatal(err)
			}
			// Another key under the same name: a checkpoint signed by an
			// impostor, or an auditor given the wrong key.
			_, other, err := note.GenerateKey(nil, testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.verify(t, d.st, other)
			if err == nil || !strings.Contains(err.Error(), "signature does not verify") {
				t.Fatalf("Verify with another key: %v", err)
			}
		})
	})
}

// TestIntegratorRefusesTamperedTree: the integrator reads the hashes it
// extends the tree with from the stored tiles, checked against the
// latest signed root, so it does not sign a checkpoint over a tile or a
// bundle changed in the database.
func TestIntegratorRefusesTamperedTree(t *testing.T) {
	drivers(t, func(t *testing.T, open func(testing.TB) *db) {
		for name, tamper := range map[string]string{
			"tile":   "UPDATE tlog_tiles SET data = ? WHERE level = 0 AND n = 0",
			"bundle": "UPDATE tlog_bundles SET body = ? WHERE n = 0",
			"root":   "UPDATE tlog_checkpoints SET root = ? WHERE size = 100",
		} {
			t.Run(name, func(t *testing.T) {
				c := newCrypt(t)
				d := open(t)
				in := c.integrator(t, d.st)
				c.appendEvents(t, d.st, 0, 100)
				if _, err := in.IntegrateAll(t.Context()); err != nil {
					t.Fatal(err)
				}
				d.exec(t, tamper, make([]byte, 100*32))
				c.appendEvents(t, d.st, 100, 110)
				_, err := in.IntegrateAll(t.Context())
				if !errors.Is(err, merkle.ErrInconsistent) {
					t.Fatalf("integrating over a changed %s: %v, want ErrInconsistent", name, err)
				}
				if n, err := d.st.TLog().CountPending(t.Context()); err != nil || n != 10 {
					t.Fatalf("pending after the refusal: %d %v, want 10 (nothing integrated)", n, err)
				}
			})
		}
		t.Run("copied record", func(t *testing.T) {
			c := newCrypt(t)
			d := open(t)
			c.appendEvents(t, d.st, 0, 5)
			d.exec(t, "INSERT INTO audit_events (recorded_at, body, leaf_hash) SELECT recorded_at, body, leaf_hash FROM audit_events")
			_, err := c.integrator(t, d.st).IntegrateAll(t.Context())
			if !errors.Is(err, merkle.ErrInconsistent) || !strings.Contains(err.Error(), "a copied record") {
				t.Fatalf("integrating a copied record: %v, want ErrInconsistent", err)
			}
		})
	})
}
