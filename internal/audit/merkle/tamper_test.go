package merkle_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/audit/merkle"
)

// TestVerifyNamesTampering changes the audit tables directly with SQL,
// as an administrator with database access could, and checks that
// Verify names the first divergence: the leaf, its record, what differs.
func TestVerifyNamesTampering(t *testing.T) {
	seqOf := func(t *testing.T, d *db, leaf int64) int64 {
		var seq int64
		q := "SELECT seq FROM audit_events WHERE leaf_index = ?"
		if d.name == "postgres" {
			q = "SELECT seq FROM audit_events WHERE leaf_index = $1"
		}
		if err := d.raw.QueryRow(q, leaf).Scan(&seq); err != nil {
			t.Fatal(err)
		}
		return seq
	}
	bodyOf := func(t *testing.T, d *db, leaf int64) (body, hash []byte) {
		q := "SELECT body, leaf_hash FROM audit_events WHERE leaf_index = ?"
		if d.name == "postgres" {
			q = "SELECT body, leaf_hash FROM audit_events WHERE leaf_index = $1"
		}
		if err := d.raw.QueryRow(q, leaf).Scan(&body, &hash); err != nil {
			t.Fatal(err)
		}
		return body, hash
	}
	tests := []struct {
		name   string
		tamper func(t *testing.T, d *db) string // returns the text the divergence must contain
	}{
		{"modify a body", func(t *testing.T, d *db) string {
			body, _ := bodyOf(t, d, 42)
			body[len(body)-1] ^= 1
			d.exec(t, "UPDATE audit_events SET body = ? WHERE leaf_index = 42", body)
			return fmt.Sprintf("leaf 42 (seq %d): sealed body does not open", seqOf(t, d, 42))
		}},
		{"replace a body with another event's", func(t *testing.T, d *db) string {
			body, _ := bodyOf(t, d, 43)
			d.exec(t, "UPDATE audit_events SET body = ? WHERE leaf_index = 42", body)
			return fmt.Sprintf("leaf 42 (seq %d): stored leaf hash differs", seqOf(t, d, 42))
		}},
		{"copy another row over one", func(t *testing.T, d *db) string {
			body, hash := bodyOf(t, d, 43)
			d.exec(t, "UPDATE audit_events SET body = ?, leaf_hash = ? WHERE leaf_index = 42", body, hash)
			return fmt.Sprintf("leaf 42 (seq %d): stored tree hash", seqOf(t, d, 42))
		}},
		{"delete a row", func(t *testing.T, d *db) string {
			d.exec(t, "DELETE FROM audit_events WHERE leaf_index = 100")
			return "leaf 100: leaf missing"
		}},
		{"delete the last rows", func(t *testing.T, d *db) string {
			d.exec(t, "DELETE FROM audit_events WHERE leaf_index >= 298")
			return "leaf 298: leaf missing"
		}},
		{"reorder two rows", func(t *testing.T, d *db) string {
			want := fmt.Sprintf("leaf 10 (seq %d): stored tree hash", seqOf(t, d, 11))
			d.exec(t, "UPDATE audit_events SET leaf_index = -1 WHERE leaf_index = 10")
			d.exec(t, "UPDATE audit_events SET leaf_index = 10 WHERE leaf_index = 11")
			d.exec(t, "UPDATE audit_events SET leaf_index = 11 WHERE leaf_index = -1")
			return want
		}},
		{"insert a row", func(t *testing.T, d *db) string {
			d.exec(t, "INSERT INTO audit_events (recorded_at, body) VALUES (?, ?)", int64(1), []byte("forged event"))
			return "record not yet integrated, and its sealed body does not open"
		}},
		{"insert a row into the tree", func(t *testing.T, d *db) string {
			body, hash := bodyOf(t, d, 5)
			d.exec(t, "INSERT INTO audit_events (recorded_at, body, leaf_hash, leaf_index) VALUES (?, ?, ?, ?)", int64(1), body, hash, int64(300))
			return "leaf 300"
		}},
		{"change a tree hash", func(t *testing.T, d *db) string {
			d.exec(t, "UPDATE tlog_hashes SET hash = ? WHERE id = ?", make([]byte, 32), tlog.StoredHashIndex(0, 77))
			return fmt.Sprintf("leaf 77 (seq %d): stored tree hash %d differs", seqOf(t, d, 77), tlog.StoredHashIndex(0, 77))
		}},
		{"change a checkpoint root", func(t *testing.T, d *db) string {
			d.exec(t, "UPDATE tlog_checkpoints SET root = ? WHERE size = 200", make([]byte, 32))
			return "checkpoint of size 200: the stored size or root differs from the signed note"
		}},
		{"change a checkpoint note", func(t *testing.T, d *db) string {
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
				for _, b := range [][2]int{{0, 100}, {100, 200}, {200, 300}} {
					c.appendEvents(t, d.st, b[0], b[1])
					if _, err := in.IntegrateAll(t.Context()); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := c.verify(t, d.st, c.signer.VerifierKey()); err != nil {
					t.Fatalf("before tampering: %v", err)
				}
				want := tt.tamper(t, d)
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
