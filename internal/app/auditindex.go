package app

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/phivault/phivault/internal/audit/export"
	"github.com/phivault/phivault/internal/audit/index"
	"github.com/phivault/phivault/internal/httpapi/auditapi"
)

// indexPoll is how often "serve" brings the audit index up to date
// between searches (a search also catches up first).
const indexPoll = time.Second

// auditIndexer follows the log into the audit index, one drain at a
// time in this process; another process's drain shows up as a moved
// cursor, which is not an error.
type auditIndexer struct {
	mu        sync.Mutex
	x         *export.Exporter
	integrate func(context.Context) (int64, error)
}

func (ix *auditIndexer) catchUp(ctx context.Context) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	// Integrate first, so a search sees the events recorded up to now
	// (the integrator otherwise runs within a second).
	if ix.integrate != nil {
		if _, err := ix.integrate(ctx); err != nil {
			return err
		}
	}
	for {
		_, err := ix.x.Drain(ctx, nil)
		if !errors.Is(err, export.ErrMoved) {
			return err
		}
	}
}

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
	a.indexer = &auditIndexer{x: x, integrate: a.tlog.Integrate}
	a.AuditIndex = index.NewReader(sq, a.Keys, a.tlog.Reader(), a.Log, a.batcher, time.Now, a.indexer.catchUp)
	return nil
}

// auditLog is the HTTP layer's view of the index (nil-safe).
func (a *App) auditLog() auditapi.AuditLog {
	if a.AuditIndex == nil {
		return nil
	}
	return a.AuditIndex
}

// RunAuditIndex keeps the audit index within about a second of the log
// until ctx ends ("phivault serve" runs it).
func (a *App) RunAuditIndex(ctx context.Context) {
	if a.indexer == nil {
		return
	}
	t := time.NewTicker(indexPoll)
	defer t.Stop()
	for {
		a.auditIndexRound(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// auditIndexRound catches the audit index up once. A failure is logged,
// unless the audit log alarm explains it (the integrator refuses to
// sign, and says so once a minute): the index waits for the log, and a
// line a second would bury the alarm.
func (a *App) auditIndexRound(ctx context.Context) {
	err := a.indexer.catchUp(ctx)
	if err == nil || ctx.Err() != nil || a.tlog.Alarm() != nil {
		return
	}
	a.logger.WarnContext(ctx, "audit index: catching up failed; retrying", "err", err)
}

// pruneEvery is how often "serve" prunes dead authentication state.
const pruneEvery = time.Hour

// RunPrune removes, every hour until ctx ends, sessions a month past
// their expiry and idle failed-login counters (sqldb.Store.Prune).
func (a *App) RunPrune(ctx context.Context) {
	sq := a.db
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		p, err := sq.Prune(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			a.logger.WarnContext(ctx, "pruning authentication state failed", "err", err)
		case p.Sessions+p.LoginFailures > 0:
			a.logger.InfoContext(ctx, "pruned authentication state", "sessions", p.Sessions, "login_failure_counters", p.LoginFailures)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
