package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/backup"
	"github.com/phivault/phivault/internal/storage"
)

// Retry delays: a failed backup is tried again after BackupRetry (or
// its interval, if shorter), a failed drill after DrillRetry (a drill
// restores a whole database: not every few minutes).
const (
	BackupRetry = 15 * time.Minute
	DrillRetry  = 6 * time.Hour
)

// DefaultTick is how often the job looks whether a step is due (and,
// on a fleet, whether it leads).
const DefaultTick = time.Minute

// Records is where runs and drills are recorded, and audit records
// appended (sqldb.Store).
type Records interface {
	storage.BackupRecords
	AppendAudit(ctx context.Context, recs ...storage.AuditRecord) error
}

// Sealer seals an audit event into a record (audit.Log).
type Sealer interface {
	Seal(ev audit.Event) (storage.AuditRecord, error)
}

// Leader is the claim on the duty on a fleet (sqldb.Leader).
type Leader interface {
	Lead(ctx context.Context) (bool, error)
	Release()
}

// Options configure a Job. Engine, Store, Records and Audit are required.
type Options struct {
	Engine  Engine
	Store   backup.Store
	Records Records
	Audit   Sealer
	// Leader decides which process of a fleet runs the job; nil: this one.
	Leader    Leader
	Backup    Schedule
	Retention backup.Policy
	// Drill is the drill schedule; a zero Every (and not Daily) means no
	// drills.
	Drill Schedule
	// Holder names this process in audit events (the agent's client).
	Holder string
	Tick   time.Duration    // DefaultTick if 0
	Logger *slog.Logger     // slog.Default() if nil
	Now    func() time.Time // time.Now if nil
}

// Job is the backup schedule of one process. Step and Run are not to be
// called concurrently (Run calls Step).
type Job struct {
	o Options
}

// New returns the job o describes.
func New(o Options) (*Job, error) {
	if o.Engine == nil || o.Store == nil || o.Records == nil || o.Audit == nil {
		return nil, errors.New("backup schedule: engine, store, records and audit are required")
	}
	if o.Backup.Interval() <= 0 {
		return nil, errors.New("backup schedule: the backup schedule is empty")
	}
	if err := o.Retention.Validate(); err != nil {
		return nil, fmt.Errorf("backup schedule: %w", err)
	}
	if o.Tick <= 0 {
		o.Tick = DefaultTick
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Job{o: o}, nil
}

// Run steps the job every Tick until ctx ends, when this process leads;
// it releases the lead when it returns.
func (j *Job) Run(ctx context.Context) {
	if j.o.Leader != nil {
		defer j.o.Leader.Release()
	}
	t := time.NewTicker(j.o.Tick)
	defer t.Stop()
	for {
		if lead := j.lead(ctx); lead {
			if err := j.Step(ctx); err != nil && ctx.Err() == nil {
				j.o.Logger.WarnContext(ctx, "backup schedule: a step could not be recorded; retrying at the next tick", slog.String("error", oneLine(err)))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (j *Job) lead(ctx context.Context) bool {
	if j.o.Leader == nil {
		return true
	}
	ok, err := j.o.Leader.Lead(ctx)
	if err != nil && ctx.Err() == nil {
		j.o.Logger.WarnContext(ctx, "backup schedule: cannot tell whether this process leads", slog.String("error", oneLine(err)))
	}
	return ok && err == nil
}

// Step takes a backup if one is due, then drills if a drill is due. A
// failed backup or drill is recorded and audited (and is not an error
// of Step); the error is one of recording, which the next Step retries.
func (j *Job) Step(ctx context.Context) error {
	due, err := j.backupDue(ctx)
	if err != nil {
		return err
	}
	if due {
		if err := j.backup(ctx); err != nil {
			return err
		}
	}
	due, err = j.drillDue(ctx)
	if err != nil || !due {
		return err
	}
	return j.drill(ctx)
}

func (j *Job) backupDue(ctx context.Context) (bool, error) {
	runs, err := j.o.Records.BackupRuns(ctx, "", 1)
	if err != nil {
		return false, fmt.Errorf("reading the last backup run: %w", err)
	}
	if len(runs) == 0 {
		return true, nil
	}
	last := runs[0]
	next := j.o.Backup.Next(last.Started)
	if last.Outcome != storage.BackupSuccess {
		next = last.Started.Add(min(BackupRetry, j.o.Backup.Interval()))
	}
	return !j.o.Now().Before(next), nil
}

func (j *Job) drillDue(ctx context.Context) (bool, error) {
	if j.o.Drill.Interval() <= 0 {
		return false, nil
	}
	good, err := j.o.Records.BackupRuns(ctx, storage.BackupSuccess, 1)
	if err != nil {
		return false, fmt.Errorf("reading the last backup run: %w", err)
	}
	if len(good) == 0 {
		return false, nil // nothing to drill yet
	}
	drills, err := j.o.Records.BackupDrills(ctx, "", 1)
	if err != nil {
		return false, fmt.Errorf("reading the last drill: %w", err)
	}
	if len(drills) == 0 {
		return true, nil
	}
	last := drills[0]
	next := j.o.Drill.Next(last.Started)
	if last.Outcome != storage.BackupSuccess {
		next = last.Started.Add(min(DrillRetry, j.o.Drill.Interval()))
	}
	return !j.o.Now().Before(next), nil
}

// backup takes one backup, prunes on success, and records the run.
func (j *Job) backup(ctx context.Context) error {
	dest := j.o.Store.String()
	log := j.o.Logger.With(slog.String("destination", dest))
	started := j.o.Now()
	log.InfoContext(ctx, "backup: starting")
	name, err := j.o.Engine.Create(ctx, j.o.Store)
	run := storage.BackupRun{ID: newID(), Name: name, Destination: dest, Started: started, Outcome: storage.BackupSuccess}
	if err == nil {
		run.Size, err = j.sizeOf(ctx, name)
	}
	if err == nil {
		run.Finished = j.o.Now()
		log.InfoContext(ctx, "backup: finished", slog.String("name", name), slog.Int64("bytes", run.Size),
			slog.Duration("took", run.Finished.Sub(started)))
		// Prune before recording, counting this backup; a failed
		// pruning keeps old backups and does not fail the backup.
		run.Pruned, err = j.prune(ctx, run)
		if err != nil {
			log.ErrorContext(ctx, "backup: pruning old backups failed; they are kept", slog.String("error", oneLine(err)))
		}
		return j.record(ctx, run, nil)
	}
	run.Finished = j.o.Now()
	run.Outcome, run.Error = storage.BackupFailure, oneLine(err)
	log.ErrorContext(ctx, "backup: failed", slog.String("name", name), slog.Duration("took", run.Finished.Sub(started)), slog.String("error", run.Error))
	return j.record(ctx, run, err)
}

// record stores run with its audit event.
func (j *Job) record(ctx context.Context, run storage.BackupRun, cause error) error {
	ev := j.event(audit.ActionBackup, run.Name, cause, "destination="+run.Destination, "bytes="+strconv.FormatInt(run.Size, 10))
	rec, err := j.o.Audit.Seal(ev)
	if err != nil {
		return fmt.Errorf("sealing the backup's audit event: %w", err)
	}
	if err := j.o.Records.RecordBackupRun(ctx, run, rec); err != nil {
		return fmt.Errorf("recording backup run: %w", err)
	}
	return nil
}

// sizeOf is the size of the object name in the store.
func (j *Job) sizeOf(ctx context.Context, name string) (int64, error) {
	objs, err := j.o.Store.List(ctx)
	if err != nil {
		return 0, fmt.Errorf("listing the backups after writing %s: %w", name, err)
	}
	for _, o := range objs {
		if o.Name == name {
			return o.Size, nil
		}
	}
	return 0, fmt.Errorf("the engine reported backup %q but the store does not list it", name)
}

// prune deletes the backups retention does not keep, among those this
// schedule recorded at this destination that the store still holds. It
// returns how many it deleted. latest is the backup just taken (not
// recorded yet). Each deletion is audited before it is
// made (and again, with an error outcome, if it fails).
func (j *Job) prune(ctx context.Context, latest storage.BackupRun) (int, error) {
	dest := j.o.Store.String()
	runs, err := j.o.Records.BackupRuns(ctx, storage.BackupSuccess, storage.MaxBackupRows)
	if err != nil {
		return 0, fmt.Errorf("reading backup runs: %w", err)
	}
	drills, err := j.o.Records.BackupDrills(ctx, "", storage.MaxBackupRows)
	if err != nil {
		return 0, fmt.Errorf("reading drills: %w", err)
	}
	objs, err := j.o.Store.List(ctx)
	if err != nil {
		return 0, fmt.Errorf("listing %s: %w", dest, err)
	}
	runs = append([]storage.BackupRun{latest}, runs...)
	present := make(map[string]bool, len(objs))
	for _, o := range objs {
		present[o.Name] = true
	}
	lastDrill := map[string]bool{} // backup -> its newest drill passed
	for _, d := range drills {     // newest first
		if _, seen := lastDrill[d.Backup]; !seen {
			lastDrill[d.Backup] = d.Outcome == storage.BackupSuccess
		}
	}
	var bs []backup.Backup
	seen := map[string]bool{}
	for _, r := range runs {
		if r.Destination != dest || r.Name == "" || !present[r.Name] || seen[r.Name] {
			continue
		}
		seen[r.Name] = true
		bs = append(bs, backup.Backup{Name: r.Name, Time: r.Started, Drilled: lastDrill[r.Name]})
	}
	del, err := backup.Prune(bs, j.o.Retention)
	if err != nil {
		return 0, err
	}
	p := j.o.Retention
	policy := fmt.Sprintf("retention=%d/%d/%d", p.Daily, p.Weekly, p.Monthly)
	n := 0
	for _, name := range del {
		if err := j.audit(ctx, audit.ActionBackupPrune, name, nil, "destination="+dest, policy); err != nil {
			return n, err
		}
		if err := j.o.Engine.Remove(ctx, j.o.Store, name); err != nil {
			_ = j.audit(ctx, audit.ActionBackupPrune, name, err, "destination="+dest, policy)
			return n, fmt.Errorf("deleting backup %s: %w", name, err)
		}
		n++
		j.o.Logger.InfoContext(ctx, "backup: deleted an old backup (retention)", slog.String("name", name), slog.String("destination", dest), slog.String("policy", policy))
	}
	return n, nil
}

// drill runs one restore drill and records it.
func (j *Job) drill(ctx context.Context) error {
	dest := j.o.Store.String()
	started := j.o.Now()
	j.o.Logger.InfoContext(ctx, "backup drill: starting", slog.String("destination", dest))
	res, err := j.o.Engine.Drill(ctx, j.o.Store)
	finished := j.o.Now()
	d := storage.BackupDrill{ID: newID(), Backup: res.Backup, Started: started, Finished: finished, Outcome: storage.BackupSuccess,
		RecoveryTime: res.Restore}
	if d.RecoveryTime <= 0 {
		d.RecoveryTime = finished.Sub(started)
	}
	if !res.Taken.IsZero() {
		d.RecoveryPoint = max(started.Sub(res.Taken), 0)
	}
	if err != nil {
		d.Outcome, d.Error = storage.BackupFailure, oneLine(err)
		j.o.Logger.ErrorContext(ctx, "backup drill: failed", slog.String("destination", dest), slog.String("backup", res.Backup), slog.String("error", d.Error))
	} else {
		j.o.Logger.InfoContext(ctx, "backup drill: passed", slog.String("destination", dest), slog.String("backup", res.Backup),
			slog.Duration("recovery_time", d.RecoveryTime), slog.Duration("recovery_point", d.RecoveryPoint))
	}
	ev := j.event(audit.ActionBackupDrill, res.Backup, err, "destination="+dest,
		"recovery_ms="+strconv.FormatInt(d.RecoveryTime.Milliseconds(), 10), "point_ms="+strconv.FormatInt(d.RecoveryPoint.Milliseconds(), 10))
	rec, serr := j.o.Audit.Seal(ev)
	if serr != nil {
		return fmt.Errorf("sealing the drill's audit event: %w", serr)
	}
	if err := j.o.Records.RecordBackupDrill(ctx, d, rec); err != nil {
		return fmt.Errorf("recording drill: %w", err)
	}
	return nil
}

// event is the audit event of a step on backup name; cause non-nil
// makes it an error.
func (j *Job) event(a audit.Action, name string, cause error, policies ...string) audit.Event {
	ev := audit.Event{Time: j.o.Now(), Action: a, Outcome: audit.OutcomeSuccess,
		Agent: audit.Agent{User: "phivault", Client: j.o.Holder}, Policies: policies}
	if name != "" {
		ev.Entities = []string{"Backup/" + name}
	}
	if cause != nil {
		ev.Outcome = audit.OutcomeError
	}
	return ev
}

// audit appends one event durably.
func (j *Job) audit(ctx context.Context, a audit.Action, name string, cause error, policies ...string) error {
	rec, err := j.o.Audit.Seal(j.event(a, name, cause, policies...))
	if err != nil {
		return fmt.Errorf("sealing a %s audit event: %w", a, err)
	}
	if err := j.o.Records.AppendAudit(ctx, rec); err != nil {
		return fmt.Errorf("appending a %s audit event: %w", a, err)
	}
	return nil
}

// oneLine is err's text on one line, bounded (stored and logged; the
// engine and the stores keep credentials out of their errors).
func oneLine(err error) string {
	if err == nil {
		return ""
	}
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > storage.MaxBackupError {
		s = s[:storage.MaxBackupError]
	}
	return s
}

// newID is a random record id.
func newID() string { return uuid.NewString() }
