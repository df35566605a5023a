package app

import (
	"time"

	"github.com/phivault/phivault/internal/audit/export"
	"github.com/phivault/phivault/internal/audit/index"
	"github.com/phivault/phivault/internal/httpapi/auditapi"
)

// openAuditIndex builds the index follower and the reader of the log.
func (a *App) openAuditIndex() error {
	sq := a.db
	x, err := export.New(export.Options{
		Sink: index.NewSink(sq, a.Keys), Source: a.tlog.Reader(), Cursors: sq.ExportCursors(),
		Batch: 1000, Logger: a.logger,
	})
	if err != nil {
		return err
	}
	a.indexer = index.NewFollower(x, a.tlog.Integrate, a.tlog.Alarm, a.logger)
	a.AuditIndex = index.NewReader(sq, a.Keys, a.tlog.Reader(), a.Log, a.batcher, time.Now, a.indexer.CatchUp)
	return nil
}

// auditLog is the HTTP layer's view of the index (nil-safe).
func (a *App) auditLog() auditapi.AuditLog {
	if a.AuditIndex == nil {
		return nil
	}
	return a.AuditIndex
}
