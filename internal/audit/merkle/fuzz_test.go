package merkle_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/audit/merkle"
)

// FuzzParseTilePath: the parser accepts exactly the canonical C2SP
// paths (parse then format is the identity) and never panics.
func FuzzParseTilePath(f *testing.F) {
	for _, s := range []string{"0/000", "0/000.p/5", "1/x001/234", "entries/000.p/15", "entries/x123/x456/789", "data/000",
		"0/00", "0/000.p/256", "0/000.p/0", "9/000", "-1/000", "0/x000/000", "0//000", "0/000.p/05"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		tile, err := merkle.ParseTilePath(p)
		if err != nil {
			return
		}
		if got := merkle.TilePath(tile); got != p {
			t.Fatalf("ParseTilePath(%q) = %+v, formats back as %q", p, tile, got)
		}
		if tile.H != merkle.TileHeight || tile.W < 1 || tile.W > merkle.TileWidth || tile.L < -1 || tile.L > 8 || tile.N < 0 {
			t.Fatalf("ParseTilePath(%q) = %+v out of range", p, tile)
		}
	})
}

// FuzzProofRequests: inclusion and consistency parameters parse only
// to in-range values and round-trip as plain decimals.
func FuzzProofRequests(f *testing.F) {
	for _, s := range [][2]string{{"0", ""}, {"5", "10"}, {"10", "5"}, {"01", "2"}, {"-1", "2"}, {"9223372036854775807", ""}, {"9223372036854775808", ""}, {" 1", "2"}, {"1e3", "2"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if r, err := merkle.ParseInclusionRequest(a, b); err == nil {
			if r.Index < 0 || r.Size < 0 || (b != "" && r.Index >= r.Size) {
				t.Fatalf("inclusion %q %q -> %+v", a, b, r)
			}
		}
		if r, err := merkle.ParseConsistencyRequest(a, b); err == nil {
			if r.Old <= 0 || r.Old > r.New {
				t.Fatalf("consistency %q %q -> %+v", a, b, r)
			}
		}
	})
}

// FuzzMonitorCheckpoint: what a monitor reads from a server (the
// checkpoint, a saved state, a tlog-proof) never panics the parsers, and
// nothing verifies that was not signed.
func FuzzMonitorCheckpoint(f *testing.F) {
	for _, name := range []string{"tessera-checkpoint.15", "sumdb-latest"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("c2sp.org/tlog-proof@v1\nindex 3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\nexample.com/log/testdata\n15\nrKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs=\n\n"))
	f.Add([]byte(`{"origin":"x","size":3,"root":"rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs=","checkpoint":""}`))
	v, err := merkle.NewVerifier("example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx")
	if err != nil {
		f.Fatal(err)
	}
	signed, _ := os.ReadFile(filepath.Join("testdata", "tessera-checkpoint.15"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if cp, err := merkle.OpenCheckpoint(b, "example.com/log/testdata", v); err == nil {
			// Only the genuine note (or one differing only in what
			// the note format ignores) may verify.
			text, _, _ := strings.Cut(string(signed), "\n\n")
			if !bytes.HasPrefix(b, []byte(text+"\n\n")) || cp.Size != 15 {
				t.Fatalf("forged checkpoint verified: %q", b)
			}
		}
		if p, err := merkle.ParseInclusionProof(b); err == nil {
			if p.Index < 0 || len(p.Proof) > 128 {
				t.Fatalf("proof %+v", p)
			}
			// Formatting what was parsed gives back the same proof.
			if p.Extra == nil {
				q, err := merkle.ParseInclusionProof(merkle.FormatInclusionProof(p.Index, p.Proof, p.Checkpoint))
				if err != nil || q.Index != p.Index || len(q.Proof) != len(p.Proof) || !bytes.Equal(q.Checkpoint, p.Checkpoint) {
					t.Fatalf("proof round trip: %+v -> %+v, %v", p, q, err)
				}
			}
		}
		if s, err := merkle.ParseMonitorState(b); err == nil {
			if s.Size < 0 {
				t.Fatalf("state %+v", s)
			}
			if _, err := json.Marshal(s); err != nil {
				t.Fatal(err)
			}
		}
		if p, err := merkle.ParseConsistencyProof(b); err == nil {
			q, err := merkle.ParseConsistencyProof(merkle.FormatConsistencyProof(p))
			if err != nil || len(q) != len(p) {
				t.Fatalf("consistency proof round trip: %v", err)
			}
		}
	})
}
