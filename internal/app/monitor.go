package app

import (
	"github.com/phivault/phivault/internal/monitor/alerts"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// Monitor returns the monitoring alerts service (ADR 0046) on this
// app's database: alerts, triage and ingest of another system's access
// log, sealed with the organisation's data key, MACs by the blind index
// key, every read and change audited.
func (a *App) Monitor() (*alerts.Service, error) {
	return alerts.New(alerts.Options{
		Tx:    sqldb.NewUnit[storage.MonitorTx](a.db),
		Store: a.db,
		Seal:  a.Record,
		MAC:   a.Keys,
		Log:   a.Log,
	})
}
