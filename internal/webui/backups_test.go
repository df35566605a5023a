package webui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// TestAdminBackupsPage: a security admin sees the backups page. Without
// a schedule it says so and every §164.308(a)(7) control fails; with a
// recorded backup and drill it shows their figures, and a failed drill
// is flagged. A physician is refused.
func TestAdminBackupsPage(t *testing.T) {
	e := start(t, "sqlite")
	admin := e.addUser(t, "sec.backups", "Bea Backups", true, identity.RoleSecurityAdmin)
	at := newTab(t)
	e.signIn(t, at, admin, "#home")
	at.do(navigate(e.URL+"/admin/backups"), waitCSS("#backup-evidence"))
	at.checkA11y()
	if got := at.text("#backup-unconfigured"); !strings.Contains(got, "No backup schedule") {
		t.Errorf("unconfigured notice %q", got)
	}
	if n := eval[int](at, `[...document.querySelectorAll('#backup-evidence td.fail')].length`); n != 3 {
		t.Errorf("%d failing controls without a schedule, want 3", n)
	}

	recs, ok := e.App.Store.(storage.BackupRecords)
	if !ok {
		t.Fatalf("%T keeps no backup records", e.App.Store)
	}
	now := time.Now().UTC()
	ctx := t.Context()
	if err := recs.RecordBackupRun(ctx, storage.BackupRun{ID: "r1", Name: "phivault-1.age", Destination: "s3://bk/prod/ at https://s3.example.org",
		Started: now.Add(-2 * time.Minute), Finished: now.Add(-time.Minute), Size: 3 << 20, Outcome: storage.BackupSuccess}); err != nil {
		t.Fatal(err)
	}
	if err := recs.RecordBackupDrill(ctx, storage.BackupDrill{ID: "d1", Backup: "phivault-1.age", Started: now.Add(-40 * time.Second), Finished: now.Add(-30 * time.Second),
		RecoveryTime: 9500 * time.Millisecond, RecoveryPoint: 80 * time.Second, Outcome: storage.BackupSuccess}); err != nil {
		t.Fatal(err)
	}
	if err := recs.RecordBackupDrill(ctx, storage.BackupDrill{ID: "d2", Backup: "phivault-1.age", Started: now.Add(-20 * time.Second), Finished: now.Add(-10 * time.Second),
		Outcome: storage.BackupFailure, Error: "restored database fails its integrity check"}); err != nil {
		t.Fatal(err)
	}
	at.do(navigate(e.URL+"/admin/backups"), waitCSS("#backup-last"))
	if got := at.text("#backup-last-size"); got != "3.0 MiB" {
		t.Errorf("size %q", got)
	}
	if got := at.text("#drill-recovery-time"); got != "9.5s" {
		t.Errorf("recovery time %q", got)
	}
	if got := at.text("#drill-recovery-point"); !strings.HasPrefix(got, "1m20s") {
		t.Errorf("recovery point %q", got)
	}
	if got := at.text("#drill-last-failed"); !strings.Contains(got, "integrity check") {
		t.Errorf("failed drill notice %q", got)
	}

	doc := e.addUser(t, "dr.backups", "Dee Doctor", true, identity.RolePhysician)
	dt := newTab(t)
	dt.ignore(`status of 403 \(Forbidden\)`)
	e.signIn(t, dt, doc, "#patient-search")
	dt.do(navigate(e.URL + "/admin/backups"))
	if body := dt.text("body"); !strings.Contains(body, "Not available to your role") || strings.Contains(body, "phivault-1.age") {
		t.Errorf("a physician sees the backups page")
	}
}
