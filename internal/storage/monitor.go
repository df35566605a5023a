package storage

import (
	"context"
	"time"
)

// Privacy and intrusion monitoring (issue 16, migration 0033, ADR 0046).
// The store holds alerts, triage notes, suppression rules, ingest runs
// and their data. Everything that may hold PHI or another system's ids
// arrives sealed (Body, Data, notes, reasons); patient, user and dedup
// keys arrive as keyed MACs (the blind index PRF). The store never sees
// them in the clear.

// Alert statuses (a triage disposition).
const (
	AlertOpen           = "open"
	AlertConfirmed      = "confirmed"
	AlertFalsePositive  = "false-positive"
	AlertNeedsInterview = "needs-interview"
)

// MonitorAlert is one stored alert.
type MonitorAlert struct {
	ID       string
	Dedup    []byte // MAC of (source, monitor.Alert.Key): unique
	Source   string // "phivault" or an ingested source's name
	Category string
	Severity string
	Score    float64
	Status   string // AlertOpen, AlertConfirmed...
	// Suppressed is the id of the suppression rule that matched the
	// alert, "" if none. A suppressed alert is kept (and counted) but
	// not listed unless asked for.
	Suppressed string
	Assignee   string // account id of the privacy officer, or ""
	Created    time.Time
	Updated    time.Time // last change of evidence, status or assignee
	First      time.Time // first access in the evidence
	Last       time.Time // last access in the evidence
	Body       []byte    // sealed monitor.Alert JSON
	Patients   [][]byte  // MACs of (source, patient ref), in no order
}

// MonitorFilter selects alerts. The zero value lists every unsuppressed
// alert, up to MaxMonitorAlerts.
type MonitorFilter struct {
	Since      time.Time // Updated at or after; zero: any
	Status     string    // "" any
	Source     string    // "" any
	MinScore   float64
	Suppressed bool // include suppressed alerts
	Limit      int  // <= 0 or above MaxMonitorAlerts: MaxMonitorAlerts
}

// MaxMonitorAlerts bounds one listing of alerts (STYLE rule 24): a
// queue longer than this is read page by page with Since and MinScore.
const MaxMonitorAlerts = 10000

// MaxMonitorRows bounds the notes, suppression rules or runs one read
// returns.
const MaxMonitorRows = 10000

// MonitorNote is a triage note on an alert.
type MonitorNote struct {
	ID      string
	Alert   string
	Author  string // account id
	Created time.Time
	Body    []byte // sealed
}

// MonitorSuppression is a suppression rule: alerts of Source matching
// every set scope (User, Patient MACs; Category) are stored suppressed.
type MonitorSuppression struct {
	ID       string
	Source   string
	User     []byte // MAC of (source, user ref), nil: any user
	Patient  []byte // MAC of (source, patient ref), nil: any patient
	Category string // "" any
	Author   string
	Created  time.Time
	Alert    string // the alert whose false positive made the rule, or ""
	Body     []byte // sealed: the rule in the clear and its reason
}

// MonitorRun is one ingest.
type MonitorRun struct {
	ID         string
	Source     string
	Actor      string // account id
	Started    time.Time
	Finished   time.Time // zero while running
	State      string    // "running", "done", "failed"
	Events     int64
	Alerts     int64
	Suppressed int64
	Bytes      int64
}

// MonitorChunk is one sealed, compressed chunk of a run's input.
type MonitorChunk struct {
	Run  string
	Seq  int64
	Kind string // "context" or "events"
	Body []byte // sealed
}

// MonitorReader reads the monitoring tables outside a transaction
// (sqldb.Store implements it). Errors wrap the storage sentinels.
type MonitorReader interface {
	// MonitorAlerts returns the alerts matching f, by score descending
	// then id, at most f's limit.
	MonitorAlerts(ctx context.Context, f MonitorFilter) ([]MonitorAlert, error)
	// MonitorAlert returns alert id with its patients, or ErrNotFound.
	MonitorAlert(ctx context.Context, id string) (MonitorAlert, error)
	// MonitorAlertByDedup returns the alert with that dedup MAC (with
	// its patients), or ErrNotFound.
	MonitorAlertByDedup(ctx context.Context, dedup []byte) (MonitorAlert, error)
	// MonitorAlertsOfPatient returns the alerts with status covering
	// the patient MAC, at most MaxMonitorRows.
	MonitorAlertsOfPatient(ctx context.Context, patient []byte, status string) ([]MonitorAlert, error)
	// MonitorNotes returns alert's notes, oldest first.
	MonitorNotes(ctx context.Context, alert string) ([]MonitorNote, error)
	// MonitorSuppressions returns source's rules, oldest first.
	MonitorSuppressions(ctx context.Context, source string) ([]MonitorSuppression, error)
	// MonitorRuns returns the latest runs, newest first, at most limit
	// (bounded by MaxMonitorRows).
	MonitorRuns(ctx context.Context, limit int) ([]MonitorRun, error)
	// MonitorChunks calls fn for run's chunks in order.
	MonitorChunks(ctx context.Context, run string, fn func(MonitorChunk) error) error
	// MonitorCursor returns the position of cursor name, 0 if unset.
	MonitorCursor(ctx context.Context, name string) (int64, error)
}

// MonitorTx writes the monitoring tables in one transaction with the
// audit events of the change (sqldb's transaction implements it; obtain
// an updater with sqldb.NewUnit[storage.MonitorTx]).
type MonitorTx interface {
	// AppendAudit adds audit records in this transaction.
	AppendAudit(ctx context.Context, recs ...AuditRecord) error
	// MonitorAlertByDedup returns the alert with that dedup MAC (with its
	// patients), or ErrNotFound.
	MonitorAlertByDedup(ctx context.Context, dedup []byte) (MonitorAlert, error)
	// PutMonitorAlert inserts a, or replaces every column and the
	// patients of the alert with a's id. Another alert with a's dedup
	// is ErrConflict.
	PutMonitorAlert(ctx context.Context, a MonitorAlert) error
	// SetMonitorAlertStatus sets alert id's status at at; ErrNotFound
	// for no such alert.
	SetMonitorAlertStatus(ctx context.Context, id, status string, at time.Time) error
	// SetMonitorAlertAssignee sets alert id's assignee ("" none) at at;
	// ErrNotFound for no such alert.
	SetMonitorAlertAssignee(ctx context.Context, id, assignee string, at time.Time) error
	// InsertMonitorNote adds n; ErrNotFound if its alert does not exist,
	// ErrConflict for a second note with its id.
	InsertMonitorNote(ctx context.Context, n MonitorNote) error
	// InsertMonitorSuppression adds r; ErrConflict for a second rule
	// with its id.
	InsertMonitorSuppression(ctx context.Context, r MonitorSuppression) error
	// InsertMonitorRun adds r; ErrConflict for a second run with its id.
	InsertMonitorRun(ctx context.Context, r MonitorRun) error
	// FinishMonitorRun sets run r.ID's finish time, state and counts;
	// ErrNotFound for no such run.
	FinishMonitorRun(ctx context.Context, r MonitorRun) error
	// PutMonitorChunk adds one chunk; ErrConflict if (run, seq) exists.
	PutMonitorChunk(ctx context.Context, c MonitorChunk) error
	// SetMonitorCursor sets cursor name to pos.
	SetMonitorCursor(ctx context.Context, name string, pos int64, at time.Time) error
}
