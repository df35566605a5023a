package storage

import (
	"context"
	"time"
)

// Scheduled backups and restore drills (issue 17, migration 0034, ADR
// 0051). The records say what ran, when, how large and with what
// outcome; the backups themselves live in a backup.Store. Nothing
// secret is recorded: Destination is the store's String and Error a
// message the caller wrote without credentials.

// Outcomes of a backup run or a drill.
const (
	BackupSuccess = "success"
	BackupFailure = "failure"
)

// MaxBackupRows bounds one listing of runs or drills (STYLE rule 24).
const MaxBackupRows = 1000

// MaxBackupError bounds the error text of a record, in bytes.
const MaxBackupError = 500

// BackupRun is one backup taken (or attempted).
type BackupRun struct {
	ID          string
	Name        string // the backup's name in the store, "" if none was written
	Destination string
	Started     time.Time
	Finished    time.Time
	Size        int64 // bytes stored
	Pruned      int   // old backups deleted by retention after this one
	Outcome     string
	Error       string
}

// BackupDrill is one restore drill of a backup.
type BackupDrill struct {
	ID       string
	Backup   string // the backup's name
	Started  time.Time
	Finished time.Time
	// RecoveryTime is how long the restore took; RecoveryPoint how old
	// the backup was when it was drilled (the data a disaster at that
	// moment would have lost). Stored in milliseconds.
	RecoveryTime  time.Duration
	RecoveryPoint time.Duration
	Outcome       string
	Error         string
}

// BackupRecords keeps the records of backups and drills. Each record is
// inserted with its audit records in one transaction: a run that is
// not audited is not recorded. A second record with the same ID is
// ErrConflict.
type BackupRecords interface {
	RecordBackupRun(ctx context.Context, r BackupRun, recs ...AuditRecord) error
	RecordBackupDrill(ctx context.Context, d BackupDrill, recs ...AuditRecord) error
	BackupReader
}

// BackupReader reads the records of backups and drills, newest (by
// Started) first. outcome "" means any; limit <= 0 or above
// MaxBackupRows means MaxBackupRows.
type BackupReader interface {
	BackupRuns(ctx context.Context, outcome string, limit int) ([]BackupRun, error)
	BackupDrills(ctx context.Context, outcome string, limit int) ([]BackupDrill, error)
}
