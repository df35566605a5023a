package merkle

import (
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// BenchmarkRecomputeTree: the hashing part of verification alone (leaf
// hash, stored hashes on the O(log n) frontier), without storage or
// decryption. Reports leaves/s.
func BenchmarkRecomputeTree(b *testing.B) {
	leaf := make([]byte, 16+300) // a salt and a typical event
	f := newFrontier()
	b.ResetTimer()
	for i := range b.N {
		leaf[0], leaf[1], leaf[2] = byte(i), byte(i>>8), byte(i>>16)
		if _, err := f.append(tlog.RecordHash(leaf)); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := f.root(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
}

// TestFrontierMatchesTree: the frontier's root equals tlog's tree hash
// over stored hashes kept in full, for every size up to 600.
func TestFrontierMatchesTree(t *testing.T) {
	var all []tlog.Hash
	hr := tlog.HashReaderFunc(func(ids []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(ids))
		for i, id := range ids {
			out[i] = all[id]
		}
		return out, nil
	})
	f := newFrontier()
	for n := int64(0); n < 600; n++ {
		h := tlog.RecordHash([]byte{byte(n), byte(n >> 8)})
		hs, err := tlog.StoredHashesForRecordHash(n, h, hr)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, hs...)
		got, err := f.append(h)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(hs) || got[len(got)-1] != hs[len(hs)-1] {
			t.Fatalf("leaf %d: frontier stored hashes differ", n)
		}
		want, _ := tlog.TreeHash(n+1, hr)
		root, err := f.root()
		if err != nil || root != want {
			t.Fatalf("size %d: root %v (%v), want %v", n+1, root, err, want)
		}
	}
}
