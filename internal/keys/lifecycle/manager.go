package lifecycle

import (
	"context"
	"log/slog"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// Progress reports a long operation: phase, units done, and total (-1
// when unknown).
type Progress func(phase string, done, total int64)

// Store is the part of the resource store the key jobs use: the key
// records and the stored versions (read in scans, written one short
// transaction at a time).
type Store interface {
	ScanKeys(ctx context.Context, fn func(storage.KeyRecord) error) error
	ScanVersions(ctx context.Context, after storage.VersionRef, fn func(storage.Version) error) error
	Update(ctx context.Context, fn func(tx storage.Tx) error) error
}

// Compactor drops the old bytes of key records from the database files
// (SQLite: WAL checkpoint; PostgreSQL: VACUUM of the keys table). An
// error is not fatal: the jobs log it and go on.
type Compactor interface {
	CompactKeys(ctx context.Context) error
}

// Alerts records an integrity alert with its audit event, once per id:
// the high-priority alert of a tampered key record in the security
// administrators' console.
type Alerts interface {
	RaiseIntegrityAlert(ctx context.Context, id, kind, ref string, now time.Time, audit storage.AuditRecord) error
}

// Sealer seals an audit event for the log (audit.Log).
type Sealer interface {
	Seal(ev audit.Event) (storage.AuditRecord, error)
}

// Deps are the Manager's collaborators. All are required but Logger.
type Deps struct {
	// Config is the keys section: the key file (empty with a KMS KEK),
	// the retention of retired KEK keys and whether serve runs epochs.
	Config config.Keys
	// Keys is the process's keyring: the jobs install every new or
	// reloaded KEK in it, so this process wraps under the key in force.
	Keys   *keys.Keyring
	Store  Store
	Epochs storage.EpochStore
	// Compactor and Alerts are the same database, typed.
	Compactor Compactor
	Alerts    Alerts
	Log       Sealer
	// Logger receives the jobs' progress and alarms; nil discards.
	Logger *slog.Logger
	// Holder names this process in the KEK epoch job's lease: unique
	// per process start (host, pid, a random suffix).
	Holder string
}

// Manager runs the key lifecycle of one phivault process: KEK and DEK
// rotation, the re-wrap after a Vault transit rotation, the KEK epoch
// job and its background loop, and the erasure status. Build one with
// [New]. Its state is fixed at construction; the epoch job runs at most
// once at a time per Manager (see the package doc's concurrency).
type Manager struct {
	cfg       config.Keys
	keys      *keys.Keyring
	store     Store
	epochs    storage.EpochStore
	compactor Compactor
	alerts    Alerts
	log       Sealer
	logger    *slog.Logger
	holder    string
	// wake is signalled after every erasure ([Manager.Wake]) and read
	// by [Manager.RunKEKEpochs].
	wake chan struct{}
}

// New returns the Manager of d.
func New(d Deps) *Manager {
	logger := d.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: d.Config, keys: d.Keys, store: d.Store, epochs: d.Epochs, compactor: d.Compactor,
		alerts: d.Alerts, log: d.Log, logger: logger, holder: d.Holder, wake: make(chan struct{}, 1)}
}

// auditKeyOp appends the key-rotate event of an operator's rotation.
func (m *Manager) auditKeyOp(ctx context.Context, what string) error {
	return m.store.Update(ctx, func(tx storage.Tx) error {
		rec, err := m.log.Seal(audit.Event{Time: nowUTC(), Action: audit.ActionKeyRotate, Outcome: audit.OutcomeSuccess,
			Agent: audit.Agent{Client: "cli"}, Entities: []string{"key/" + what}})
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, rec)
	})
}

func nowUTC() time.Time { return time.Now().UTC() }
