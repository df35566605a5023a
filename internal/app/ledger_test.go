package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
)

// freshConfig is a new data directory (key file, resolved paths) on
// SQLite or on a new PostgreSQL database.
func freshConfig(t *testing.T, driver string) config.Config {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	c := config.Default(dir)
	if driver == "postgres" {
		c.Storage = config.Storage{Driver: "postgres", PostgresURL: pgtest.NewDatabase(t)}
	}
	c = c.Resolved()
	if err := keys.CreateKeyFile(c.Keys.KeyFile); err != nil {
		t.Fatal(err)
	}
	return c
}

// openLedgerApp opens a fresh instance on SQLite or PostgreSQL.
func openLedgerApp(t *testing.T, driver string) *app.App {
	t.Helper()
	c := freshConfig(t, driver)
	a, err := app.Open(t.Context(), c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// TestVerifyWhileWriting runs the ledger check while writers create,
// update and delete resources (each write commits its version and the
// event that commits to it in one transaction): a check that reads the
// database after the log must judge each resource against the log as it
// is when it reads it, and report nothing.
func TestVerifyWhileWriting(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			a := openLedgerApp(t, driver)
			ctx := t.Context()
			caller := record.Caller{Agent: audit.Agent{User: "test", Client: "test"}, Purpose: "TREAT", Guard: record.Offline()}
			create := func(i int) string {
				res, err := a.Record.Parse(fmt.Appendf(nil, `{"resourceType":"Patient","gender":"other","name":[{"family":"W%d"}]}`, i))
				if err != nil {
					t.Fatal(err)
				}
				st, _, err := a.Record.Create(ctx, caller, res, "")
				if err != nil {
					t.Fatal(err)
				}
				return st.ID
			}
			for i := range 50 {
				create(i)
			}
			wctx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			for w := range 2 {
				wg.Go(func() {
					for i := 0; wctx.Err() == nil; i++ {
						id := create(1000*w + i)
						st, err := a.Record.Read(ctx, caller, "Patient", id)
						if err != nil {
							t.Error(err)
							return
						}
						res, _ := a.Record.Parse(st.JSON)
						if _, _, err := a.Record.Update(ctx, caller, "Patient", id, res, st.Version); err != nil {
							t.Error(err)
							return
						}
						if i%3 == 0 {
							if err := a.Record.Delete(ctx, caller, "Patient", id); err != nil {
								t.Error(err)
								return
							}
						}
					}
				})
			}
			for range 3 {
				rep, err := a.Ledger().Verify(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !rep.OK() {
					t.Errorf("verify while writing: %s %v", rep.LogDivergence, rep.Data.Problems)
				}
				if rep.Data.PreLedger != 0 || rep.Data.Verified < 50 {
					t.Errorf("verify while writing: %+v", rep.Data)
				}
			}
			stop()
			wg.Wait()
		})
	}
}

// BenchmarkCreate stores the heart-rate Observation of bench/load's
// create mode through the record service (validation, indexing, sealing,
// the ledger commitment, one group-committed transaction with its audit
// event), from 64 goroutines, on SQLite. Compare with
// keys.BenchmarkLedgerCommit, the commitment alone (bench/README.md).
func BenchmarkCreate(b *testing.B) { benchCreate(b, "sqlite") }

// BenchmarkCreatePostgres is BenchmarkCreate on PostgreSQL (a throwaway
// database): one transaction per create, with the owner's lock that
// serialises writes against an erasure (ADR 0015, amendment).
func BenchmarkCreatePostgres(b *testing.B) { benchCreate(b, "postgres") }

func benchCreate(b *testing.B, driver string) {
	dir := b.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "keys"), 0o700); err != nil {
		b.Fatal(err)
	}
	c := config.Default(dir)
	if driver == "postgres" {
		c.Storage = config.Storage{Driver: "postgres", PostgresURL: pgtest.NewDatabase(b)}
	}
	c = c.Resolved()
	if err := keys.CreateKeyFile(c.Keys.KeyFile); err != nil {
		b.Fatal(err)
	}
	a, err := app.Open(b.Context(), c, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	caller := record.Caller{Agent: audit.Agent{User: "bench", Client: "bench"}, Purpose: "TREAT", Guard: record.Offline()}
	body := []byte(`{"resourceType":"Observation","status":"final",` +
		`"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs","display":"Vital signs"}]}],` +
		`"code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}],"text":"Heart rate"},` +
		`"subject":{"reference":"Patient/bench-1"},"effectiveDateTime":"2024-05-01T10:00:00Z","issued":"2024-05-01T10:03:00.000Z",` +
		`"valueQuantity":{"value":72,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}`)
	// The patient's data key is created by the first write (on
	// PostgreSQL, concurrent first writes race for it: one wins, the
	// others answer 409).
	if res, err := a.Record.Parse(body); err != nil {
		b.Fatal(err)
	} else if _, _, err := a.Record.Create(b.Context(), caller, res, ""); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := a.Record.Parse(body)
			if err != nil {
				b.Error(err)
				return
			}
			if _, _, err := a.Record.Create(b.Context(), caller, res, ""); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}
