package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/phivault/phivault/internal/backup"
	"github.com/phivault/phivault/internal/backup/s3store"
	"github.com/phivault/phivault/internal/backup/schedule"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/observe"
)

// Scheduled backups and restore drills (issue 17, ADR 0051,
// docs/backup-schedule.md): the "backup" section of the configuration
// builds a destination store and the schedule's job; serve runs it (one
// process of a fleet leads it); the console, the evidence and /metrics
// read its records.

// BackupLeaderName is the duty name of the backup schedule's lock.
const BackupLeaderName = "backup-schedule"

// backupCheckTimeout bounds the start-up check of an S3 bucket.
const backupCheckTimeout = 10 * time.Second

// backupEngine adapts the backup engine (package backup, app/backup.go)
// to schedule.Engine.
type backupEngine struct {
	app *App
	c   *config.Backup
}

func (e backupEngine) Create(ctx context.Context, st backup.Store) (string, error) {
	rs, err := backup.ParseRecipients(e.c.Recipients, nil)
	if err != nil {
		return "", fmt.Errorf("backup.recipients: %w", err)
	}
	// Not CreateBackup: it takes the data directory lock, which serve
	// already holds; the schedule records its own audit event.
	cr, err := createBackup(ctx, e.app.Config, st, backup.CreateOptions{Recipients: rs, Sealer: e.app.Keys.KEK()})
	if len(cr.Stale) > 0 {
		e.app.logger.WarnContext(ctx, "backup: removed the temporary files of a backup that died", slog.Any("files", cr.Stale))
	}
	return cr.Name, err
}

func (e backupEngine) Drill(ctx context.Context, st backup.Store) (schedule.DrillResult, error) {
	ids, err := backup.ParseIdentityFiles(e.c.Drill.IdentityFile)
	if err != nil {
		return schedule.DrillResult{}, fmt.Errorf("backup.drill.identity_file: %w", err)
	}
	o := DrillOptions{Identities: ids, KeyFile: e.c.Drill.KeyFile, Logger: e.app.logger}
	if e.app.Config.Storage.Driver == "postgres" {
		o.Postgres = e.app.Config.Storage.PostgresURL
	}
	r := DrillBackup(ctx, st, o)
	return schedule.DrillResult{Backup: r.Name, Taken: r.Started.Add(-r.RecoveryPoint), Restore: r.RecoveryTime}, r.Err
}

func (e backupEngine) Remove(ctx context.Context, st backup.Store, name string) error {
	return backup.Remove(ctx, st, name)
}

func openDirStore(dir string) (backup.Store, error) { return backup.NewDirStore(dir) }

// ---------------------------------------------------------------------

var _ schedule.Engine = backupEngine{}

// openBackup builds the backup schedule when the configuration has a
// "backup" section.
func (a *App) openBackup(ctx context.Context) error {
	// Temporary files of backups killed before this start (a plaintext
	// snapshot among them): removed and reported, with or without a
	// schedule.
	if stale, err := RemoveStaleBackupFiles(a.Config, nil); err != nil {
		a.logger.WarnContext(ctx, "backup: removing stale temporary files", slog.Any("error", err))
	} else if len(stale) > 0 {
		a.logger.WarnContext(ctx, "backup: removed the temporary files of a backup that died", slog.Any("files", stale))
	}
	b := a.Config.Backup
	if b == nil {
		return nil
	}
	if !b.Drill.Off {
		// Found wrong at start, not at the first drill a week later.
		fi, err := os.Stat(b.Drill.IdentityFile)
		if err != nil {
			return fmt.Errorf("backup.drill.identity_file: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return fmt.Errorf("backup.drill.identity_file %s: readable by group or others (mode %v); chmod 600", b.Drill.IdentityFile, fi.Mode().Perm())
		}
	}
	st, err := a.backupStore(ctx, b)
	if err != nil {
		return err
	}
	sched := schedule.Schedule{Every: b.Every.D()}
	if h, m, ok := b.DailyTime(); ok {
		sched = schedule.Schedule{Daily: true, Hour: h, Minute: m}
	}
	var drill schedule.Schedule
	if !b.Drill.Off {
		drill.Every = b.DrillEvery()
	}
	r := b.RetentionOrDefault()
	a.backupStoreName = st.String()
	a.backupJob, err = schedule.New(schedule.Options{
		Engine: backupEngine{app: a, c: b}, Store: st, Records: a.db, Audit: a.Log,
		Leader: a.db.Leader(BackupLeaderName), Backup: sched, Drill: drill,
		Retention: backup.Policy{Daily: r.Daily, Weekly: r.Weekly, Monthly: r.Monthly},
		Holder:    processName(), Logger: a.logger,
	})
	if err != nil {
		return fmt.Errorf("opening the backup schedule: %w", err)
	}
	return nil
}

// backupStore opens the destination of b.
func (a *App) backupStore(ctx context.Context, b *config.Backup) (backup.Store, error) {
	if b.S3 == nil {
		return openDirStore(b.Dir)
	}
	access, secret, session := b.S3.Credentials()
	o := s3store.Options{Endpoint: b.S3.Endpoint, Bucket: b.S3.Bucket, Prefix: b.S3.Prefix, Region: b.S3.Region,
		AccessKey: access, SecretKey: secret, SessionToken: session}
	if b.S3.CAFile != "" {
		pem, err := os.ReadFile(b.S3.CAFile)
		if err != nil {
			return nil, fmt.Errorf("backup.s3.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("backup.s3.ca_file: no PEM certificate in %s", b.S3.CAFile)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		o.Transport = tr
	}
	st, err := s3store.New(o)
	if err != nil {
		return nil, fmt.Errorf("backup.s3: %w", err)
	}
	// A bucket that cannot be reached now is a warning, not a refusal
	// to start: the schedule records (and the console shows) each
	// failed backup.
	cctx, cancel := context.WithTimeout(ctx, backupCheckTimeout)
	defer cancel()
	if err := st.Check(cctx); err != nil {
		a.logger.Warn("backup: the destination bucket cannot be reached now; scheduled backups will fail until it can",
			slog.String("destination", st.String()), slog.String("error", err.Error()))
	}
	return st, nil
}

// RunBackups runs the backup schedule until ctx ends (Serve runs it; a
// no-op without a "backup" section).
func (a *App) RunBackups(ctx context.Context) {
	if a.backupJob != nil {
		a.backupJob.Run(ctx)
	}
}

// BackupJob is the backup schedule, nil without a "backup" section
// (tests step it).
func (a *App) BackupJob() *schedule.Job { return a.backupJob }

// BackupStatus is the state of backups and drills now, from the
// database (every process of a fleet answers the same).
func (a *App) BackupStatus(ctx context.Context) (schedule.Status, error) {
	s := schedule.Settings{}
	if b := a.Config.Backup; b != nil {
		s = schedule.Settings{Configured: true, Destination: a.backupStoreName, Interval: b.Interval()}
		if !b.Drill.Off {
			s.DrillEvery = b.DrillEvery()
		}
	}
	return schedule.ReadStatus(ctx, a.db, s, time.Now())
}

// backupFigures are the /metrics gauges of backups.
func (a *App) backupFigures(ctx context.Context) (observe.BackupFigures, error) {
	st, err := a.BackupStatus(ctx)
	if err != nil {
		return observe.BackupFigures{}, err
	}
	var f observe.BackupFigures
	if st.LastBackup != nil {
		f.LastBackup = st.LastBackup.Finished
	}
	if d := st.LastGoodDrill; d != nil {
		f.LastDrill, f.LastDrillRecovery = d.Finished, d.RecoveryTime
	}
	return f, nil
}
