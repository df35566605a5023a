package schedule

import (
	"context"
	"fmt"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// OverdueFactor is how many of its intervals may pass without a
// success before a backup (or drill) is overdue. Two intervals tolerate one missed
// or failed run (a retry usually follows) before anyone is alerted.
const OverdueFactor = 2

// Status is the state of backups and drills, for the console, the
// compliance evidence and /metrics. It holds no secret.
type Status struct {
	Configured    bool // a schedule is configured
	Destination   string
	Interval      time.Duration // between backups
	DrillInterval time.Duration // between drills; 0: drills are off

	LastRun       *storage.BackupRun   // newest backup run, any outcome
	LastBackup    *storage.BackupRun   // newest successful backup
	LastDrill     *storage.BackupDrill // newest drill, any outcome
	LastGoodDrill *storage.BackupDrill // newest drill that passed

	BackupOverdue bool // no successful backup within OverdueFactor × Interval
	DrillOverdue  bool // no passed drill within OverdueFactor × DrillInterval (or drills off)
}

// Settings is what Status needs of the schedule.
type Settings struct {
	Destination          string
	Interval, DrillEvery time.Duration // DrillEvery 0: drills off
	Configured           bool
}

// ReadStatus reads the status at now. Without a schedule (Configured
// false), records of backups still show, and nothing is overdue that
// no schedule promised, except that the evidence fails (see Evidence).
func ReadStatus(ctx context.Context, rd storage.BackupReader, s Settings, now time.Time) (Status, error) {
	st := Status{Configured: s.Configured, Destination: s.Destination, Interval: s.Interval, DrillInterval: s.DrillEvery}
	runs, err := rd.BackupRuns(ctx, "", 1)
	if err != nil {
		return st, fmt.Errorf("reading backup runs: %w", err)
	}
	if len(runs) > 0 {
		st.LastRun = &runs[0]
	}
	if runs, err = rd.BackupRuns(ctx, storage.BackupSuccess, 1); err != nil {
		return st, fmt.Errorf("reading backup runs: %w", err)
	}
	if len(runs) > 0 {
		st.LastBackup = &runs[0]
	}
	drills, err := rd.BackupDrills(ctx, "", 1)
	if err != nil {
		return st, fmt.Errorf("reading drills: %w", err)
	}
	if len(drills) > 0 {
		st.LastDrill = &drills[0]
	}
	if drills, err = rd.BackupDrills(ctx, storage.BackupSuccess, 1); err != nil {
		return st, fmt.Errorf("reading drills: %w", err)
	}
	if len(drills) > 0 {
		st.LastGoodDrill = &drills[0]
	}
	if s.Configured {
		st.BackupOverdue = st.LastBackup == nil || now.Sub(st.LastBackup.Finished) > OverdueFactor*s.Interval
		st.DrillOverdue = s.DrillEvery <= 0 || st.LastGoodDrill == nil || now.Sub(st.LastGoodDrill.Finished) > OverdueFactor*s.DrillEvery
	}
	return st, nil
}

// Control is one line of HIPAA Security Rule evidence: a standard, its
// live proof, and whether it passes now.
type Control struct {
	ID     string // "164.308(a)(7)(ii)(A)"
	Title  string
	Pass   bool
	Detail string // the proof, or why it fails; no secret
}

// Evidence is the live evidence of the contingency plan standard,
// §164.308(a)(7): the data backup plan (ii)(A), the disaster recovery
// plan (ii)(B) and the testing and revision procedures (ii)(D), read
// from the records of st. A control fails when no schedule is
// configured, when nothing succeeded yet, or when it is overdue.
func Evidence(st Status) []Control {
	const day = "2006-01-02 15:04 UTC"
	a := Control{ID: "164.308(a)(7)(ii)(A)", Title: "Data backup plan: retrievable exact copies of ePHI"}
	b := Control{ID: "164.308(a)(7)(ii)(B)", Title: "Disaster recovery plan: procedures to restore any loss of data"}
	d := Control{ID: "164.308(a)(7)(ii)(D)", Title: "Testing and revision procedures: contingency plans tested"}
	switch {
	case !st.Configured:
		a.Detail = "no backup schedule is configured (backup section of the configuration)"
	case st.LastBackup == nil:
		a.Detail = "no backup has succeeded yet"
	case st.BackupOverdue:
		a.Detail = fmt.Sprintf("OVERDUE: the last successful backup finished %s, more than %d × the %s schedule ago", st.LastBackup.Finished.UTC().Format(day), OverdueFactor, st.Interval)
	default:
		a.Pass = true
		a.Detail = fmt.Sprintf("encrypted backup %s (%d bytes) to %s at %s, every %s", st.LastBackup.Name, st.LastBackup.Size, st.LastBackup.Destination, st.LastBackup.Finished.UTC().Format(day), st.Interval)
	}
	switch {
	case st.LastGoodDrill == nil:
		b.Detail = "no restore has been proven by a drill yet"
	default:
		g := st.LastGoodDrill
		b.Pass = a.Pass
		b.Detail = fmt.Sprintf("backup %s restored in %s at %s (recovery point %s)", g.Backup, g.RecoveryTime.Round(time.Millisecond), g.Finished.UTC().Format(day), g.RecoveryPoint.Round(time.Second))
		if !a.Pass {
			b.Detail += "; but the backups it restores from are not current"
		}
	}
	switch {
	case !st.Configured || st.DrillInterval <= 0:
		d.Detail = "restore drills are not scheduled (backup.drill)"
	case st.LastGoodDrill == nil:
		d.Detail = "no restore drill has passed yet"
	case st.DrillOverdue:
		d.Detail = fmt.Sprintf("OVERDUE: the last passed drill finished %s, more than %d × the %s drill schedule ago", st.LastGoodDrill.Finished.UTC().Format(day), OverdueFactor, st.DrillInterval)
	default:
		d.Pass = true
		d.Detail = fmt.Sprintf("restore drill passed at %s, every %s", st.LastGoodDrill.Finished.UTC().Format(day), st.DrillInterval)
	}
	if ld := st.LastDrill; ld != nil && ld.Outcome != storage.BackupSuccess {
		d.Pass = false
		d.Detail = "the last drill FAILED at " + ld.Finished.UTC().Format(day) + ": " + ld.Error
	}
	return []Control{a, b, d}
}
