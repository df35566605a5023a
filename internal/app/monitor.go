package app

import (
	"log/slog"

	"github.com/phivault/phivault/internal/httpapi"
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
		Seal:  alerts.KeySealer{Keys: a.Keys},
		MAC:   a.Keys,
		Log:   a.Log,
	})
}

// monitorAPI is the service behind /admin/api/monitor, or nil (the
// routes answer 503) if it cannot be built.
func (a *App) monitorAPI() httpapi.Monitor {
	m, err := a.Monitor()
	if err != nil {
		a.logger.Error("monitoring is not available", slog.Any("error", err))
		return nil
	}
	return m
}
