package app_test

import (
	"bytes"
	"encoding/pem"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/backup/schedule"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/storage"
)

// TestBackupScheduleWiring: a "backup" section with an S3 destination
// (an S3-compatible server over TLS on loopback, trusted through
// backup.s3.ca_file) opens the schedule; a step puts a real backup in the
// bucket, records a failed drill (placeholder identity) that the status,
// the evidence and /metrics show; the credentials appear in no log line.
func TestBackupScheduleWiring(t *testing.T) {
	be := s3mem.New()
	if err := be.CreateBucket("phivault"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(gofakes3.New(be).Server())
	t.Cleanup(srv.Close)
	c := authzConfig(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	identity := filepath.Join(t.TempDir(), "drill.agekey")
	const secret = "wiring-test-secret-value"
	s3 := config.BackupS3{Endpoint: srv.URL, Bucket: "phivault", Prefix: "prod/", CAFile: ca}.WithCredentials("AKIAWIRING", secret)
	c.Backup = &config.Backup{S3: s3, Recipients: []string{"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"},
		Every: config.Duration(time.Hour), Drill: config.BackupDrill{IdentityFile: identity}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// A missing or loosely protected drill identity refuses the start.
	if _, err := openApp(t, c); err == nil || !strings.Contains(err.Error(), "backup.drill.identity_file") {
		t.Fatalf("start without the drill identity: %v", err)
	}
	if err := os.WriteFile(identity, []byte("AGE-SECRET-KEY-1 test placeholder, never parsed here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := openApp(t, c); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("start with a world-readable drill identity: %v", err)
	}
	if err := os.Chmod(identity, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	a, err := app.Open(t.Context(), c, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if a.BackupJob() == nil {
		t.Fatal("no backup job with a backup section")
	}
	if err := a.BackupJob().Step(t.Context()); err != nil {
		t.Fatal(err)
	}
	st, err := a.BackupStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The backup itself went to the bucket through the real engine; the
	// drill failed (the identity is a placeholder) and says so.
	if st.LastRun == nil || st.LastRun.Outcome != storage.BackupSuccess ||
		!strings.Contains(st.LastRun.Destination, "s3://phivault/prod/") || st.BackupOverdue {
		t.Fatalf("status after a step: %+v (run %+v)", st, st.LastRun)
	}
	if _, err := be.HeadObject("phivault", "prod/"+st.LastRun.Name); err != nil {
		t.Fatalf("the backup %s is not in the bucket: %v", st.LastRun.Name, err)
	}
	if st.LastDrill == nil || st.LastDrill.Outcome != storage.BackupFailure || st.LastGoodDrill != nil || !st.DrillOverdue {
		t.Fatalf("drill with a placeholder identity: %+v", st.LastDrill)
	}
	for _, ctl := range schedule.Evidence(st) {
		if want := ctl.ID == "164.308(a)(7)(ii)(A)"; ctl.Pass != want {
			t.Fatalf("control %s: pass=%v, want %v", ctl.ID, ctl.Pass, want)
		}
	}
	if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), "AKIAWIRING") {
		t.Fatal("a credential reached the log")
	}
	if !strings.Contains(logs.String(), `"msg":"backup: finished"`) {
		t.Fatalf("the backup is not logged:\n%s", logs.String())
	}
	// /metrics has the backup's success timestamp, and no drill success
	// (absent, so an alert on absence fires).
	mfs, err := a.Metrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	if !got["phivault_backup_last_success_timestamp_seconds"] || got["phivault_backup_drill_last_success_timestamp_seconds"] {
		t.Fatalf("backup metrics after one backup and a failed drill: %v", got)
	}
}
