package schedule_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/backup"
	"github.com/phivault/phivault/internal/backup/schedule"
	"github.com/phivault/phivault/internal/backup/storetest"
	"github.com/phivault/phivault/internal/storage"
)

// The test directory store passes the Store conformance suite too.
func TestDirStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) backup.Store { return dirStore{dir: t.TempDir()} })
}

func (e *env) job(t *testing.T, o schedule.Options) *schedule.Job {
	t.Helper()
	o.Engine, o.Store, o.Records, o.Audit, o.Now, o.Holder = e.eng, e.st, e.db, e.log, e.clock.Now, "test-host"
	o.Logger = slog.New(slog.NewJSONHandler(e.logs, nil))
	j, err := schedule.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (e *env) step(t *testing.T, j *schedule.Job) {
	t.Helper()
	if err := j.Step(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func (e *env) backups(t *testing.T) []string {
	t.Helper()
	objs, err := e.st.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		if strings.HasSuffix(o.Name, ".bak") {
			out = append(out, o.Name)
		}
	}
	slices.Sort(out)
	return out
}

func count(evs []audit.Event, a audit.Action, o audit.Outcome) int {
	n := 0
	for _, ev := range evs {
		if ev.Action == a && ev.Outcome == o {
			n++
		}
	}
	return n
}

// Three days at one step an hour: a backup every 6 hours, a drill a
// day, retention of two days; every run and drill recorded and audited,
// old backups deleted (and audited) but the newest of each of the last
// two days kept.
func TestScheduleRunsPrunesAndDrills(t *testing.T) {
	e := newEnv(t)
	j := e.job(t, schedule.Options{
		Backup:    schedule.Schedule{Every: 6 * time.Hour},
		Retention: backup.Policy{Daily: 2},
		Drill:     schedule.Schedule{Every: 24 * time.Hour},
	})
	for range 72 {
		e.step(t, j)
		e.clock.Advance(time.Hour)
	}
	ctx := t.Context()
	runs, err := e.db.BackupRuns(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 12 {
		t.Fatalf("%d backup runs in 72 hours every 6 hours, want 12", len(runs))
	}
	for _, r := range runs {
		if r.Outcome != storage.BackupSuccess || r.Size == 0 || r.Destination != e.st.dir || r.Name == "" {
			t.Fatalf("run %+v", r)
		}
	}
	// Backups at 00:30, 06:30, 12:30, 18:30 on Dec 1-3. Kept: the newest
	// of Dec 3 and of Dec 2; the drills passed, so the newest drilled
	// backup (drilled on Dec 3 at 00:30: the 00:30 one) is kept too.
	want := []string{"phivault-20261202T183000Z.bak", "phivault-20261203T003000Z.bak", "phivault-20261203T183000Z.bak"}
	if got := e.backups(t); !slices.Equal(got, want) {
		t.Fatalf("backups kept %v, want %v", got, want)
	}
	drills, err := e.db.BackupDrills(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(drills) != 3 {
		t.Fatalf("%d drills in 3 days, want 3", len(drills))
	}
	for _, d := range drills {
		if d.Outcome != storage.BackupSuccess || d.Backup == "" || d.RecoveryPoint != 0 {
			t.Fatalf("drill %+v (drilled right after its backup: recovery point 0)", d)
		}
	}
	evs := e.events(t)
	if n := count(evs, audit.ActionBackup, audit.OutcomeSuccess); n != 12 {
		t.Errorf("%d backup events, want 12", n)
	}
	if n := count(evs, audit.ActionBackupDrill, audit.OutcomeSuccess); n != 3 {
		t.Errorf("%d drill events, want 3", n)
	}
	if n := count(evs, audit.ActionBackupPrune, audit.OutcomeSuccess); n != 12-len(want) {
		t.Errorf("%d prune events, want %d", n, 12-len(want))
	}
	for _, ev := range evs {
		if len(ev.Entities) != 1 || !strings.HasPrefix(ev.Entities[0], "Backup/phivault-") || ev.Agent.Client != "test-host" ||
			!slices.Contains(ev.Policies, "destination="+e.st.dir) {
			t.Fatalf("event %+v", ev)
		}
	}
	logs := e.logs.String()
	if strings.Count(logs, `"msg":"backup: finished"`) != 12 || !strings.Contains(logs, `"bytes":39`) {
		t.Fatalf("the log does not say each backup finished with its size:\n%s", logs)
	}
	// A restart (a new job on the same records) takes the backup that
	// is due now (6h after the last), and then none until the next.
	for i := range 2 {
		j2 := e.job(t, schedule.Options{Backup: schedule.Schedule{Every: 6 * time.Hour}, Retention: backup.Policy{Daily: 2}})
		e.step(t, j2)
		if runs, _ := e.db.BackupRuns(ctx, "", 0); len(runs) != 13 {
			t.Fatalf("restart %d: %d runs, want 13", i, len(runs))
		}
		e.clock.Advance(time.Hour)
	}
}

// A backup that fails is recorded and audited with its error, retried
// after BackupRetry (not at once), and makes the evidence fail once
// overdue; the old backups are not pruned meanwhile.
func TestFailedBackupRecordedAndRetried(t *testing.T) {
	e := newEnv(t)
	j := e.job(t, schedule.Options{Backup: schedule.Schedule{Every: time.Hour}, Drill: schedule.Schedule{Every: 24 * time.Hour}})
	e.step(t, j) // a good backup, and a drill
	if err := os.Remove(e.eng.src); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	e.step(t, j)
	runs, err := e.db.BackupRuns(t.Context(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].Outcome != storage.BackupFailure || !strings.Contains(runs[0].Error, "snapshot") || runs[0].Name != "" {
		t.Fatalf("runs %+v", runs)
	}
	if n := count(e.events(t), audit.ActionBackup, audit.OutcomeError); n != 1 {
		t.Fatalf("%d failed backup events, want 1", n)
	}
	e.clock.Advance(schedule.BackupRetry - time.Minute)
	e.step(t, j)
	if runs, _ := e.db.BackupRuns(t.Context(), "", 0); len(runs) != 2 {
		t.Fatalf("retried before BackupRetry: %d runs", len(runs))
	}
	e.clock.Advance(time.Minute)
	e.step(t, j)
	if runs, _ := e.db.BackupRuns(t.Context(), "", 0); len(runs) != 3 {
		t.Fatalf("not retried after BackupRetry: %d runs", len(runs))
	}
	if got := e.backups(t); len(got) != 1 {
		t.Fatalf("backups %v: the only good one must stay", got)
	}
	settings := schedule.Settings{Configured: true, Destination: e.st.dir, Interval: time.Hour, DrillEvery: 24 * time.Hour}
	st, err := schedule.ReadStatus(t.Context(), e.db, settings, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st.BackupOverdue || !schedule.Evidence(st)[0].Pass {
		t.Fatalf("1h15 after the last good hourly backup: overdue already (%+v)", schedule.Evidence(st)[0])
	}
	st, err = schedule.ReadStatus(t.Context(), e.db, settings, e.clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !st.BackupOverdue || st.LastRun.Outcome != storage.BackupFailure || st.LastBackup == nil {
		t.Fatalf("status %+v", st)
	}
	ev := schedule.Evidence(st)
	if ev[0].Pass || !strings.Contains(ev[0].Detail, "OVERDUE") || ev[1].Pass || !ev[2].Pass {
		t.Fatalf("evidence %+v: want (A) overdue and failing, (B) failing with it, (D) passing", ev)
	}
}

// A backup damaged in the store fails its drill: recorded, audited as
// an error, and the testing control (ii)(D) fails.
func TestDrillDetectsDamage(t *testing.T) {
	e := newEnv(t)
	j := e.job(t, schedule.Options{Backup: schedule.Schedule{Every: 24 * time.Hour}, Drill: schedule.Schedule{Every: time.Hour}})
	e.step(t, j) // backup and drill
	name := e.backups(t)[0]
	if err := os.WriteFile(filepath.Join(e.st.dir, name), []byte("ransomware was here"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	e.step(t, j)
	drills, err := e.db.BackupDrills(t.Context(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(drills) != 2 || drills[0].Outcome != storage.BackupFailure || !strings.Contains(drills[0].Error, "does not match") || drills[0].Backup != name {
		t.Fatalf("drills %+v", drills)
	}
	if n := count(e.events(t), audit.ActionBackupDrill, audit.OutcomeError); n != 1 {
		t.Fatalf("%d failed drill events, want 1", n)
	}
	st, err := schedule.ReadStatus(t.Context(), e.db, schedule.Settings{Configured: true, Interval: 24 * time.Hour, DrillEvery: time.Hour}, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	ev := schedule.Evidence(st)
	if ev[2].Pass || !strings.Contains(ev[2].Detail, "FAILED") {
		t.Fatalf("(ii)(D) = %+v, want failing on the failed drill", ev[2])
	}
	// The next drill waits DrillRetry (capped at its interval, 1h here).
	e.clock.Advance(30 * time.Minute)
	e.step(t, j)
	if d, _ := e.db.BackupDrills(t.Context(), "", 0); len(d) != 2 {
		t.Fatalf("a failed drill retried too soon (%d drills)", len(d))
	}
}

// Nothing configured, nothing run: every control fails and says why.
func TestEvidenceWithoutSchedule(t *testing.T) {
	e := newEnv(t)
	st, err := schedule.ReadStatus(t.Context(), e.db, schedule.Settings{}, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range schedule.Evidence(st) {
		if c.Pass || c.Detail == "" || !strings.HasPrefix(c.ID, "164.308(a)(7)(ii)") {
			t.Fatalf("control %+v", c)
		}
	}
	// Configured and fresh: all pass; 2× the interval later, overdue.
	j := e.job(t, schedule.Options{Backup: schedule.Schedule{Every: time.Hour}, Drill: schedule.Schedule{Every: 2 * time.Hour}})
	e.step(t, j)
	s := schedule.Settings{Configured: true, Interval: time.Hour, DrillEvery: 2 * time.Hour}
	st, _ = schedule.ReadStatus(t.Context(), e.db, s, e.clock.Now())
	for _, c := range schedule.Evidence(st) {
		if !c.Pass {
			t.Fatalf("fresh: control %+v fails", c)
		}
	}
	st, _ = schedule.ReadStatus(t.Context(), e.db, s, e.clock.Now().Add(4*time.Hour+time.Second))
	if !st.BackupOverdue || !st.DrillOverdue {
		t.Fatalf("4h later: overdue backup %v drill %v", st.BackupOverdue, st.DrillOverdue)
	}
}

func TestScheduleNext(t *testing.T) {
	d := schedule.Schedule{Daily: true, Hour: 2, Minute: 30}
	cases := []struct{ last, want string }{
		{"2026-12-08T02:30:00Z", "2026-12-09T02:30:00Z"},
		{"2026-12-08T02:29:59Z", "2026-12-08T02:30:00Z"},
		{"2026-12-08T10:00:00Z", "2026-12-09T02:30:00Z"}, // a late catch-up does not shift the time of day
		{"2026-12-31T23:00:00Z", "2027-01-01T02:30:00Z"},
	}
	for _, c := range cases {
		last, _ := time.Parse(time.RFC3339, c.last)
		want, _ := time.Parse(time.RFC3339, c.want)
		if got := d.Next(last); !got.Equal(want) {
			t.Errorf("Next(%s) = %s, want %s", c.last, got, want)
		}
	}
	if got := (schedule.Schedule{Every: 6 * time.Hour}).Next(time.Time{}); got != (time.Time{}).Add(6*time.Hour) {
		t.Errorf("every 6h: %s", got)
	}
}

// Run stops when its context ends, after stepping at once.
func TestRunStepsAndStops(t *testing.T) {
	e := newEnv(t)
	j := e.job(t, schedule.Options{Backup: schedule.Schedule{Every: time.Hour}, Tick: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { j.Run(ctx); close(done) }()
	for {
		runs, err := e.db.BackupRuns(t.Context(), "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}
