package merkle_test

import (
	"os"
	"testing"

	"github.com/phivault/phivault/internal/audit/merkle"
)

// Benchmarks for bench/README.md. They report rates as custom metrics;
// no test asserts a timing.

// appendBatch is the batcher's default group size.
const appendBatch = 256

// BenchmarkAppendIntegrate: seal events (salt, leaf hash, AES-GCM),
// append them in batches as the read-audit batcher does, and integrate
// every DefaultMaxBatch events, on SQLite. Reports events/s end to end.
func BenchmarkAppendIntegrate(b *testing.B) {
	c := newCrypt(b)
	d := openSQLite(b)
	in := c.integrator(b, d.st)
	b.ResetTimer()
	n := 0
	for n < b.N {
		k := min(appendBatch, b.N-n)
		c.appendEvents(b, d.st, n, n+k)
		n += k
		if n%merkle.DefaultMaxBatch < appendBatch || n == b.N {
			if _, err := in.IntegrateAll(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	// Bytes stored per event: the SQLite file (after a WAL checkpoint)
	// over the events, tree hashes and checkpoints included.
	if b.N >= 10000 {
		if _, err := d.raw.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			b.Fatal(err)
		}
		if fi, err := os.Stat(d.path); err == nil {
			b.ReportMetric(float64(fi.Size())/float64(b.N), "bytes/event")
		}
	}
}

// verifyLog builds a log of n events on SQLite once per benchmark.
func verifyLog(b *testing.B, n int) (*crypt, *db) {
	c := newCrypt(b)
	d := openSQLite(b)
	in := c.integrator(b, d.st)
	for i := 0; i < n; i += 4096 {
		c.appendEvents(b, d.st, i, min(i+4096, n))
		if _, err := in.IntegrateAll(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	return c, d
}

// BenchmarkVerify: full verification (read, decrypt, rehash, compare
// stored hashes and checkpoints) of a 100,000-event SQLite log.
func BenchmarkVerify(b *testing.B) {
	const n = 100_000
	c, d := verifyLog(b, n)
	b.ResetTimer()
	for range b.N {
		rep, err := c.verify(b, d.st, c.signer.VerifierKey())
		if err != nil || rep.Leaves != n {
			b.Fatalf("%+v %v", rep, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
}

// BenchmarkInclusionProof: one C2SP inclusion proof from the stored
// hashes of a 100,000-event log (latest checkpoint).
func BenchmarkInclusionProof(b *testing.B) {
	const n = 100_000
	c, d := verifyLog(b, n)
	r := merkle.NewReader(d.st.TLog(), c.log)
	b.ResetTimer()
	for i := range b.N {
		if _, err := r.InclusionProof(b.Context(), merkle.InclusionRequest{Index: int64(i*7919) % n}); err != nil {
			b.Fatal(err)
		}
	}
}
