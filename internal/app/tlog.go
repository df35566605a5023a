package app

import (
	"context"
	"fmt"

	"github.com/phivault/phivault/internal/audit/tlog"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/ledger"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/webui"
)

// openTransparency loads the log signing key (created with the other
// system keys) and opens the transparency log (package tlog), whose
// goroutines App.Close stops after draining the batcher.
func (a *App) openTransparency(ctx context.Context) error {
	sq := a.db
	rec, err := a.Store.Key(ctx, keys.SystemLogSigner)
	if err != nil {
		return fmt.Errorf("opening the audit log signing key: %w", err)
	}
	signer, err := a.Keys.LoadLogSigner(rec, a.Config.Audit.LogName)
	if err != nil {
		return fmt.Errorf("opening the audit log signing key (audit.log_name): %w", err)
	}
	a.tlog, err = tlog.Open(ctx, tlog.Options{
		Store: sq.TLog(), Signer: signer, Origin: a.Config.Audit.LogName, Log: a.Log,
		CheckpointFile: a.Config.Audit.CheckpointFile, WitnessCheckpoints: a.Config.Audit.WitnessCheckpoints,
		Verifications: sq, Alerts: sqldb.NewUnit[tlog.Tx](sq), Logger: a.logger,
	})
	return err
}

// Transparency is the audit log's transparency side: integration,
// checkpoints kept outside the database, verification (package tlog).
func (a *App) Transparency() *tlog.Log { return a.tlog }

// Ledger proves the stored data against the audit log ("phivault
// verify", ADR 0016).
func (a *App) Ledger() *ledger.Verifier {
	return &ledger.Verifier{Store: a.Store, Keys: a.Keys, Ledger: a.ledger, Log: a.tlog, Audit: a.Log, Record: a.Record}
}

// trustStatus is the transparency log as the web UI's trust pages read
// it (webui.AuditLog).
type trustStatus struct{ l *tlog.Log }

func (t trustStatus) TrustStatus(ctx context.Context) (webui.AuditLogStatus, error) {
	st, err := t.l.Status(ctx)
	return webui.AuditLogStatus(st), err
}
