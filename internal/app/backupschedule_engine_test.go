// The scheduled backup and drill through the real engine.

package app_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/phivault/phivault/internal/backup/schedule"
	"github.com/phivault/phivault/internal/config"
)

// TestBackupScheduleWithEngine: with the engine connected, one step of
// the schedule takes an age-encrypted backup into a directory and drills
// it, and every §164.308(a)(7) control passes.
func TestBackupScheduleWithEngine(t *testing.T) {
	c := authzConfig(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	idf := filepath.Join(t.TempDir(), "drill.agekey")
	if err := os.WriteFile(idf, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c.Backup = &config.Backup{Dir: dir, Recipients: []string{id.Recipient().String()}, Every: config.Duration(time.Hour),
		Drill: config.BackupDrill{IdentityFile: idf, KeyFile: c.Keys.KeyFile}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := config.Write(c); err != nil {
		t.Fatal(err)
	}
	a, err := openApp(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.BackupJob().Step(t.Context()); err != nil {
		t.Fatal(err)
	}
	st, err := a.BackupStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, ctl := range schedule.Evidence(st) {
		if !ctl.Pass {
			t.Errorf("control %s fails", ctl.ID)
		}
	}
	if st.LastRun == nil || st.LastRun.Size == 0 || st.LastGoodDrill == nil || st.LastGoodDrill.Backup != st.LastRun.Name {
		t.Fatalf("run %+v drill %+v", st.LastRun, st.LastGoodDrill)
	}
}
