package bulk

import (
	"context"
	"time"
)

// State is where a job stands.
type State string

// Job states. A deleted or expired job has no state: its row is gone.
const (
	StateQueued  State = "queued"  // waiting for a process to claim it
	StateRunning State = "running" // claimed by Holder until LeaseUntil
	StateDone    State = "done"    // files ready: the manifest is served
	StateFailed  State = "failed"  // Error says why (no PHI)
)

// Job is one export as stored (table bulk_jobs). Params and Key are
// opaque to the store: Params is the kick-off sealed under the job key
// (file 0), Key the job key wrapped under the KEK (nil once destroyed).
type Job struct {
	ID         string
	Client     string // the SMART client that started it
	State      State
	Params     []byte
	Key        []byte
	Created    time.Time
	TxTime     time.Time // the manifest's transactionTime
	Expires    time.Time // files and key are destroyed after it
	Holder     string    // process running it
	LeaseUntil time.Time
	Attempts   int
	Progress   string // no PHI: counts
	Error      string // no PHI
}

// File kinds.
const (
	KindOutput  = "output"
	KindError   = "error"
	KindDeleted = "deleted" // transaction Bundles of deletions (with _since)
)

// File is one output file's metadata (table bulk_files).
type File struct {
	N     int    // file number, from 1; in the download URL
	Kind  string // KindOutput, KindDeleted or KindError
	Type  string // resource type of its lines
	Count int    // resources (lines) in it
}

// Store keeps jobs and their sealed files. Implementations are safe for
// concurrent use by many processes on one database (a PostgreSQL fleet):
// a job is run by the one process whose claim holds, and every write of
// a running job names its holder, so a process that lost its lease
// (another claimed the job after it stalled) or whose job was deleted
// writes nothing. Errors wrap storage.ErrNotFound for a missing job or
// file, and ErrLeaseLost for a write by a holder that no longer holds.
type Store interface {
	// CreateJob stores j (queued) unless its client already has max or
	// more queued or running jobs: then ErrTooManyJobs.
	CreateJob(ctx context.Context, j Job, max int) error
	// Job returns job id.
	Job(ctx context.Context, id string) (Job, error)
	// ClaimJob gives holder the oldest job that is queued, or running
	// with a lease that ended before now (its holder died): state
	// running, lease until leaseUntil, attempts+1. ok=false when none.
	ClaimJob(ctx context.Context, holder string, now, leaseUntil time.Time) (j Job, ok bool, err error)
	// RenewLease extends holder's lease on job id and records progress.
	RenewLease(ctx context.Context, id, holder string, until time.Time, progress string) error
	// ResetFiles deletes every file of job id (a run starting over).
	ResetFiles(ctx context.Context, id, holder string) error
	// PutFile stores one sealed file of job id.
	PutFile(ctx context.Context, id, holder string, f File, data []byte) error
	// FinishJob ends holder's run of job id: state done or failed, the
	// error text (failed), and when it expires.
	FinishJob(ctx context.Context, id, holder string, state State, errText string, expires time.Time) error
	// Files lists the files of job id in number order.
	Files(ctx context.Context, id string) ([]File, error)
	// FileData returns the sealed bytes of file n of job id.
	FileData(ctx context.Context, id string, n int) ([]byte, error)
	// DeleteJob deletes job id, its files and its wrapped key.
	DeleteJob(ctx context.Context, id string) error
	// Expired returns up to limit ids of jobs whose Expires is before now.
	Expired(ctx context.Context, now time.Time, limit int) ([]string, error)
}
