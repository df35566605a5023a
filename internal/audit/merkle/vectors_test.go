package merkle_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/audit/merkle"
)

// vectors is the shared real-log data, found from the module root
// (../shared/data/vectors next to the repository).
func vectors(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "..", "shared", "data", "vectors", name)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared vectors not available: %v", err)
	}
	return dir
}

// dirSource reads a log from files: checkpoint and tiles under dir,
// with tile paths made by path.
type dirSource struct {
	dir        string
	checkpoint string
	path       func(tlog.Tile) string
}

func (s *dirSource) Checkpoint(context.Context) ([]byte, error) {
	return os.ReadFile(filepath.Join(s.dir, s.checkpoint))
}

func (s *dirSource) Tile(_ context.Context, t tlog.Tile) ([]byte, error) {
	return os.ReadFile(filepath.Join(s.dir, filepath.FromSlash(s.path(t))))
}

// TestTesseraLog runs our monitor over the 16 checkpoints of a real
// Tessera v1.0.4 log (C2SP tiles), checking each against the previous
// with its own tiles, and checks its entry bundles against its tiles.
func TestTesseraLog(t *testing.T) {
	dir := vectors(t, "tessera-v1.0.4/log")
	const vkey = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx"
	v, err := merkle.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	src := &dirSource{dir: dir, path: func(t tlog.Tile) string { return "tile/" + merkle.TilePath(t) }}
	m := merkle.NewMonitor(src, "example.com/log/testdata", v)
	var st *merkle.MonitorState
	for i := 0; i <= 15; i++ {
		src.checkpoint = fmt.Sprintf("checkpoint.%d", i)
		next, err := m.Check(t.Context(), st)
		if err != nil {
			t.Fatalf("checkpoint %d: %v", i, err)
		}
		if next.Size != int64(i) {
			t.Fatalf("checkpoint.%d has size %d", i, next.Size)
		}
		st = &next
	}
	if got := st.Root.String(); got != "rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs=" {
		t.Errorf("size 15 root %s", got)
	}
	// A monitor that saw size 15 alarms when shown size 12 again.
	src.checkpoint = "checkpoint.12"
	if _, err := m.Check(t.Context(), st); err == nil || !strings.Contains(err.Error(), "rolled-back") {
		t.Errorf("rollback to 12: %v", err)
	}
	// Entry bundle 000.p/15 holds the 15 leaves whose hashes are tile 0/000.p/15.
	bundle, err := os.ReadFile(filepath.Join(dir, "tile", "entries", "000.p", "15"))
	if err != nil {
		t.Fatal(err)
	}
	tile, err := os.ReadFile(filepath.Join(dir, "tile", "0", "000.p", "15"))
	if err != nil {
		t.Fatal(err)
	}
	var leaves []string
	for i := 0; len(bundle) > 0; i++ {
		n := int(binary.BigEndian.Uint16(bundle))
		leaf := bundle[2 : 2+n]
		bundle = bundle[2+n:]
		h := tlog.RecordHash(leaf)
		if string(h[:]) != string(tile[32*i:32*i+32]) {
			t.Errorf("entry %d (%q) does not hash to tile entry %d", i, leaf, i)
		}
		leaves = append(leaves, string(leaf))
	}
	if len(leaves) != 15 || leaves[0] != "one" || leaves[14] != "fivten" {
		t.Errorf("leaves %q", leaves)
	}
}

// TestSumDBSample checks a signed checkpoint of sum.golang.org with our
// checkpoint parser and monitor (tiles in the sumdb path layout), and a
// module lookup's inclusion in its tree.
func TestSumDBSample(t *testing.T) {
	dir := vectors(t, "sumdb-sample")
	const vkey = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
	v, err := merkle.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	src := &dirSource{dir: dir, checkpoint: "latest", path: tlog.Tile.Path}
	m := merkle.NewMonitor(src, "go.sum database tree", v)
	st, err := m.Check(t.Context(), nil)
	if err != nil {
		t.Fatalf("latest: %v", err)
	}
	if st.Size != 72421544 {
		t.Errorf("size %d", st.Size)
	}
	// The lookup's record and the tree it was served with.
	lookup, err := os.ReadFile(filepath.Join(dir, "lookup", "golang.org", "x", "mod@v0.43.0"))
	if err != nil {
		t.Fatal(err)
	}
	idLine, rest, _ := strings.Cut(string(lookup), "\n")
	text, signed, _ := strings.Cut(rest, "\n\n")
	cp, err := merkle.OpenCheckpoint([]byte(signed), "go.sum database tree", v)
	if err != nil {
		t.Fatalf("lookup checkpoint: %v", err)
	}
	var id int64
	fmt.Sscan(idLine, &id)
	// Consistency of the lookup's tree with the latest, through tiles.
	if _, err := m.Advance(t.Context(), &merkle.MonitorState{Origin: cp.Origin, Size: cp.Size, Root: cp.Root}, merkle.Checkpoint{Origin: st.Origin, Size: st.Size, Root: st.Root}); err != nil {
		t.Logf("consistency %d..%d through the sample's tiles: %v", cp.Size, st.Size, err)
	}
	hr := tlog.TileHashReader(tlog.Tree{N: cp.Size, Hash: cp.Root}, &tileFiles{src})
	p, err := tlog.ProveRecord(cp.Size, id, hr)
	if err != nil {
		t.Fatalf("proving record %d: %v", id, err)
	}
	if err := merkle.CheckInclusion(p, cp.Size, cp.Root, id, tlog.RecordHash([]byte(text+"\n"))); err != nil {
		t.Errorf("lookup record: %v", err)
	}
}

type tileFiles struct{ s *dirSource }

func (f *tileFiles) Height() int { return 8 }
func (f *tileFiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, t := range ts {
		b, err := f.s.Tile(context.Background(), t)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}
func (f *tileFiles) SaveTiles([]tlog.Tile, [][]byte) {}

// TestArgon2020 checks our proof checkers on real Certificate
// Transparency data (RFC 6962): an inclusion proof and a consistency
// proof from Google's Argon2020 log.
func TestArgon2020(t *testing.T) {
	dir := vectors(t, "xmod-argon2020")
	read := func(name string, v any) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	var sth struct {
		Size int64     `json:"tree_size"`
		Root tlog.Hash `json:"sha256_root_hash"`
	}
	var entries struct {
		Entries []struct {
			Data []byte `json:"leaf_input"`
		} `json:"entries"`
	}
	var proof struct {
		Index int64            `json:"leaf_index"`
		Path  tlog.RecordProof `json:"audit_path"`
	}
	var cons struct {
		Proof tlog.TreeProof `json:"consistency"`
	}
	read("sth.json", &sth)
	read("entries.json", &entries)
	read("proof.json", &proof)
	read("consistency.json", &cons)
	leaf := tlog.RecordHash(entries.Entries[0].Data)
	if err := merkle.CheckInclusion(proof.Path, sth.Size, sth.Root, proof.Index, leaf); err != nil {
		t.Errorf("inclusion: %v", err)
	}
	old, _ := tlog.ParseHash("AuIZ5V6sDUj1vn3Y1K85oOaQ7y+FJJKtyRTl1edIKBQ=")
	if err := merkle.CheckConsistency(cons.Proof, sth.Size, sth.Root, 3654490, old); err != nil {
		t.Errorf("consistency: %v", err)
	}
	// A flipped bit in either proof fails.
	bad := append(tlog.RecordProof(nil), proof.Path...)
	bad[3][0] ^= 1
	if merkle.CheckInclusion(bad, sth.Size, sth.Root, proof.Index, leaf) == nil {
		t.Error("a corrupted inclusion proof verified")
	}
	if merkle.CheckConsistency(cons.Proof, sth.Size, sth.Root, 3654490, leaf) == nil {
		t.Error("a consistency proof verified against the wrong old root")
	}
}
