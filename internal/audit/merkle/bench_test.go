package merkle_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
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

// verifyLog builds a log of n events on SQLite once per benchmark,
// integrated 4,096 at a time.
func verifyLog(b *testing.B, n int) (*crypt, *db) { return verifyLogEvery(b, n, 4096) }

// verifyLogEvery builds a log of n events integrated every `every`
// events: one checkpoint per integration.
func verifyLogEvery(b *testing.B, n, every int) (*crypt, *db) {
	c := newCrypt(b)
	d := openSQLite(b)
	in := c.integrator(b, d.st)
	for i := 0; i < n; i += every {
		c.appendEvents(b, d.st, i, min(i+every, n))
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

// BenchmarkVerifyManyCheckpoints is BenchmarkVerify on a log
// integrated every 37 events (2,703 checkpoints, most of them inside
// entry bundles), as a lightly loaded server signs them.
func BenchmarkVerifyManyCheckpoints(b *testing.B) {
	const n = 100_000
	c, d := verifyLogEvery(b, n, 37)
	b.ResetTimer()
	for range b.N {
		rep, err := c.verify(b, d.st, c.signer.VerifierKey())
		if err != nil || rep.Leaves != n || rep.Checkpoints != (n+36)/37 {
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

// BenchmarkAuditedRead is what auditing one read costs the request that
// made it: sealing the event (salted leaf, leaf hash, AES-GCM) and
// waiting for the group-commit batcher to make it durable on SQLite,
// with 64 concurrent readers as in the bench/ harness. The integrator is
// not in this path (it runs behind, within a second).
func BenchmarkAuditedRead(b *testing.B) {
	c := newCrypt(b)
	d := openSQLite(b)
	bt := audit.NewBatcher(d.st, audit.BatcherOptions{})
	defer bt.Close()
	ev := audit.Event{Action: audit.ActionRead, Outcome: audit.OutcomeSuccess,
		Agent:    audit.Agent{User: "u-1", Role: "physician", Session: "s-1", Address: "192.0.2.1"},
		Patients: []string{"Patient/p-1"}, Entities: []string{"Observation/o-1/_history/1"}, Purpose: "TREAT", Status: 200}
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e := ev
			e.Time = time.Now()
			rec, err := c.log.Seal(e)
			if err != nil {
				b.Error(err)
				return
			}
			if err := bt.Record(context.Background(), rec); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
