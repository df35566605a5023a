package privacy

import (
	"context"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// Tx is the part of one write transaction that the access reports use
// (the store's unit of work, ADR 0024). Every method but AppendAudit is
// one plain statement with its row check; errors wrap the storage
// sentinels. It is not safe for concurrent use.
type Tx interface {
	// AppendAudit adds audit records in this transaction.
	AppendAudit(ctx context.Context, recs ...storage.AuditRecord) error
	// InsertAccessReport stores r, open. A report with the same id is
	// an error wrapping storage.ErrConflict.
	InsertAccessReport(ctx context.Context, r storage.AccessReport) error
	// CloseAccessReport closes the open report id at at, by closer,
	// with a sealed note (nil for none). It returns an error wrapping
	// storage.ErrNotFound for no such report and storage.ErrConflict
	// for one already closed.
	CloseAccessReport(ctx context.Context, id, closer string, at time.Time, note []byte) error
}

// Updater is the unit of work of the access reports: Update runs fn in
// one transaction and commits it if fn returns nil, retrying fn after a
// lost race (fn must have no side effects outside tx); an error from fn
// is returned unchanged. sqldb.NewUnit[privacy.Tx] implements it.
type Updater interface {
	Update(ctx context.Context, fn func(Tx) error) error
}

// Store reads access reports outside a transaction (sqldb.Store
// implements it). Errors wrap the storage sentinels.
type Store interface {
	// OpenAccessReports returns up to limit open reports, oldest first
	// (the store bounds limit).
	OpenAccessReports(ctx context.Context, limit int) ([]storage.AccessReport, error)
	// AccessReport returns report id, or an error wrapping
	// storage.ErrNotFound.
	AccessReport(ctx context.Context, id string) (storage.AccessReport, error)
}
