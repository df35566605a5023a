package storagetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// testBackups: the records of backups and drills (migration 0034) are
// stored with their audit records in one transaction, read back newest
// first with an outcome filter and a limit, refuse a second record of
// one id (with no audit record), and bound the error text.
func testBackups(t *testing.T, s storage.Store) {
	ctx := t.Context()
	br, ok := s.(storage.BackupRecords)
	if !ok {
		t.Fatalf("%T does not implement storage.BackupRecords", s)
	}
	audited := func() int {
		n := 0
		if err := s.ScanAudit(ctx, 0, func(int64, storage.AuditRecord) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	ev := func(s string) storage.AuditRecord { return storage.AuditRecord{Time: at(0), Body: []byte(s)} }
	runs := []storage.BackupRun{
		{ID: "r1", Name: "phivault-1.age", Destination: "/srv/backups", Started: at(10), Finished: at(20), Size: 1 << 40, Pruned: 2, Outcome: storage.BackupSuccess},
		{ID: "r2", Name: "", Destination: "s3://b/p/ at https://s3.example.org", Started: at(30), Finished: at(31), Outcome: storage.BackupFailure, Error: "putting: connection refused"},
		{ID: "r3", Name: "phivault-3.age", Destination: "/srv/backups", Started: at(40), Finished: at(45), Size: 7, Outcome: storage.BackupSuccess},
	}
	for _, r := range runs {
		if err := br.RecordBackupRun(ctx, r, ev("run "+r.ID)); err != nil {
			t.Fatal(err)
		}
	}
	if n := audited(); n != 3 {
		t.Fatalf("%d audit records after 3 runs, want 3", n)
	}
	if err := br.RecordBackupRun(ctx, runs[0], ev("again")); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("a second run r1: %v, want ErrConflict", err)
	}
	if n := audited(); n != 3 {
		t.Fatalf("a refused record appended its audit record (%d records)", n)
	}
	got, err := br.BackupRuns(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != runs[2] || got[1] != runs[1] || got[2] != runs[0] {
		t.Fatalf("BackupRuns = %+v, want r3 r2 r1 as stored", got)
	}
	got, err = br.BackupRuns(ctx, storage.BackupSuccess, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "r3" {
		t.Fatalf("last successful run = %+v, want r3", got)
	}
	if got, err := br.BackupRuns(ctx, "nothing-like-this", 0); err != nil || len(got) != 0 {
		t.Fatalf("runs of an unknown outcome: %v %v", got, err)
	}

	long := strings.Repeat("é", storage.MaxBackupError) // 2 bytes a rune
	drills := []storage.BackupDrill{
		{ID: "d1", Backup: "phivault-1.age", Started: at(50), Finished: at(60), RecoveryTime: 9876 * time.Millisecond, RecoveryPoint: 40 * time.Second, Outcome: storage.BackupSuccess},
		{ID: "d2", Backup: "phivault-3.age", Started: at(70), Finished: at(71), Outcome: storage.BackupFailure, Error: long},
	}
	for _, d := range drills {
		if err := br.RecordBackupDrill(ctx, d, ev("drill "+d.ID)); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := br.BackupDrills(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].ID != "d2" || ds[1] != drills[0] {
		t.Fatalf("BackupDrills = %+v", ds)
	}
	if e := ds[0].Error; len(e) > storage.MaxBackupError || !strings.HasPrefix(long, e) || len(e) < storage.MaxBackupError-2 || !strings.HasSuffix(e, "é") {
		t.Fatalf("a long error was stored as %d bytes (%q...)", len(e), e[:min(len(e), 8)])
	}
	ds, err = br.BackupDrills(ctx, storage.BackupSuccess, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].ID != "d1" {
		t.Fatalf("successful drills = %+v, want d1", ds)
	}
	if n := audited(); n != 5 {
		t.Fatalf("%d audit records, want 5", n)
	}
}
