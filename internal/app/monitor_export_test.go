package app

import (
	"github.com/phivault/phivault/internal/monitor/ownlog"
	"github.com/phivault/phivault/internal/record"
)

// MonitorSource is the loader's read path over a's records (the
// authorizer's privileged one), for the tests that build a loader.
func MonitorSource(a *App) ownlog.Source { return record.NewAuthzSource(a.Record) }
