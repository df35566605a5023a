package schedule_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/backup"
	"github.com/phivault/phivault/internal/backup/schedule"
	"github.com/phivault/phivault/internal/storage/postgres"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// On PostgreSQL two processes run the schedule on one database; the
// advisory lock lets one of them take the backups, so each due backup
// is taken once, by the same process.
func TestFleetOneLeader(t *testing.T) {
	url := pgtest.NewDatabase(t)
	open := func() *sqldb.Store {
		s, err := postgres.Open(t.Context(), url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	e := newEnv(t)
	dbA, dbB := open(), open()
	e.db = dbA // events and records are read through A
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, p := range []struct {
		db   *sqldb.Store
		name string
	}{{dbA, "process-a"}, {dbB, "process-b"}} {
		j, err := schedule.New(schedule.Options{Engine: e.eng, Store: e.st, Records: p.db, Audit: e.log, Leader: p.db.Leader("backup-schedule"),
			Backup: schedule.Schedule{Every: time.Hour}, Retention: backup.Policy{Daily: 30}, Holder: p.name,
			Tick: 5 * time.Millisecond, Now: e.clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); j.Run(ctx) }()
	}
	waitRuns := func(n int) {
		t.Helper()
		for {
			runs, err := dbA.BackupRuns(t.Context(), "", 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(runs) >= n {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for i := 1; i <= 5; i++ {
		waitRuns(i)
		e.clock.Advance(time.Hour + time.Second)
	}
	waitRuns(6)
	cancel()
	wg.Wait()
	holders := map[string]int{}
	for _, ev := range e.events(t) {
		if ev.Action == audit.ActionBackup {
			holders[ev.Agent.Client]++
		}
	}
	if len(holders) != 1 {
		t.Fatalf("backups were taken by %v: want one leader", holders)
	}
	for _, n := range holders {
		if n != 6 {
			t.Fatalf("%d backups for 6 due slots", n)
		}
	}
}
