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
// backup.s3.ca_file) opens the schedule; until the engine is connected
// each step is recorded as a failed backup, audited, visible in the
// status and failing evidence; the credentials appear in no log line.
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
	if st.LastRun == nil || st.LastRun.Outcome != storage.BackupFailure || !strings.Contains(st.LastRun.Error, "not connected") ||
		!strings.Contains(st.LastRun.Destination, "s3://phivault/prod/") || !st.BackupOverdue {
		t.Fatalf("status after a step: %+v (run %+v)", st, st.LastRun)
	}
	for _, ctl := range schedule.Evidence(st) {
		if ctl.Pass {
			t.Fatalf("control %s passes without any backup", ctl.ID)
		}
	}
	if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), "AKIAWIRING") {
		t.Fatal("a credential reached the log")
	}
	if !strings.Contains(logs.String(), `"msg":"backup: failed"`) {
		t.Fatalf("the failed backup is not logged:\n%s", logs.String())
	}
	// /metrics has no success timestamp yet (absent, so an alert on
	// absence fires).
	mfs, err := a.Metrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "phivault_backup_") {
			t.Fatalf("metric %s exported before any success", mf.GetName())
		}
	}
}
