package storagetest

import (
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/phivault/phivault/internal/storage"
)

// benchResource is a typical stored resource: ~2 KiB of ciphertext and
// ten index rows (eight hashes, two date ranges).
func benchResource(i int, ct []byte) (storage.Version, []storage.IndexRow) {
	v := storage.Version{Type: "Observation", ID: fmt.Sprintf("bench-%09d", i), Version: 1, Owner: "Patient/p1", LastUpdated: at(i % 100000), Ciphertext: ct}
	idx := make([]storage.IndexRow, 0, 10)
	for j := range 8 {
		idx = append(idx, storage.IndexRow{Param: fmt.Sprintf("p%d", j), Hash: fmt.Appendf(nil, "%032d", i*10+j)})
	}
	idx = append(idx, date("date", int64(i), int64(i)+86_400_000_000), date("issued", int64(i), int64(i)))
	return v, idx
}

func benchCiphertext() []byte {
	ct := make([]byte, 2048)
	rand.Read(ct)
	return ct
}

// BenchPut measures one created resource per Update (one durable commit
// each).
func BenchPut(b *testing.B, s storage.Store) {
	ct := benchCiphertext()
	ctx := b.Context()
	b.SetBytes(int64(len(ct)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		v, idx := benchResource(i, ct)
		if err := s.Update(ctx, func(tx storage.Tx) error { return tx.Put(ctx, v, idx) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resources/s")
}

// BenchPutBatch100 measures imports: 100 created resources per Update.
func BenchPutBatch100(b *testing.B, s storage.Store) {
	ct := benchCiphertext()
	ctx := b.Context()
	b.SetBytes(100 * int64(len(ct)))
	n := 0
	for b.Loop() {
		err := s.Update(ctx, func(tx storage.Tx) error {
			for i := range 100 {
				v, idx := benchResource(n+i, ct)
				if err := tx.Put(ctx, v, idx); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		n += 100
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
}

// BenchCurrent measures parallel reads of current versions.
func BenchCurrent(b *testing.B, s storage.Store) {
	ct := benchCiphertext()
	ctx := b.Context()
	const n = 1000
	seedBench(b, s, ct, n)
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1)) % n
			if _, err := s.Current(ctx, "Observation", fmt.Sprintf("bench-%09d", i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchUpdate measures updates of existing resources (one per Update):
// each replaces the resource's index rows, so it deletes as much as it
// inserts. SQLite's secure_delete (ADR 0015) costs most here.
func BenchUpdate(b *testing.B, s storage.Store) {
	ct := benchCiphertext()
	ctx := b.Context()
	const n = 1000
	seedBench(b, s, ct, n)
	b.SetBytes(int64(len(ct)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		v, idx := benchResource(i%n, ct)
		v.Version = int64(i/n) + 2
		if err := s.Update(ctx, func(tx storage.Tx) error { return tx.Put(ctx, v, idx) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resources/s")
}

// seedBench stores n benchmark resources sealed as ct, in one Update.
func seedBench(b *testing.B, s storage.Store, ct []byte, n int) {
	b.Helper()
	ctx := b.Context()
	if err := s.Update(ctx, func(tx storage.Tx) error {
		for i := range n {
			v, idx := benchResource(i, ct)
			if err := tx.Put(ctx, v, idx); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
}
