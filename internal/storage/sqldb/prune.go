package sqldb

import (
	"context"
	"log/slog"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// Retention of authentication state that no longer protects anything.
const (
	// SessionRetention keeps a dead session's row (its id, times and
	// address) this long after its absolute expiry, for investigations
	// that start from the audit trail's session ids.
	SessionRetention = 30 * 24 * time.Hour
	// FailureRetention forgets an account's failed logins this long after
	// the last one, once its backoff has passed. Accounts locked until
	// an administrator resets them are never forgotten.
	FailureRetention = 30 * 24 * time.Hour
)

// Pruned counts the rows [Store.Prune] removed.
type Pruned struct {
	Sessions      int64
	LoginFailures int64
}

// Prune deletes sessions whose absolute expiry is older than
// SessionRetention, and failed-login counters past their backoff and
// untouched for FailureRetention (a lock until reset has a far-future
// locked_until and stays; a counter back at zero is already deleted). Without it both
// tables grow without bound under credential stuffing.
func (s *Store) Prune(ctx context.Context, now time.Time) (Pruned, error) {
	var p Pruned
	err := s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		res, err := t.exec(ctx, `DELETE FROM sessions WHERE expires_absolute < ?`, now.Add(-SessionRetention).UnixMicro())
		if err != nil {
			return t.s.translate("prune sessions", err)
		}
		if p.Sessions, err = res.RowsAffected(); err != nil {
			return t.s.translate("prune sessions", err)
		}
		res, err = t.exec(ctx, `DELETE FROM login_failures WHERE locked_until < ? AND updated < ?`,
			now.UnixMicro(), now.Add(-FailureRetention).UnixMicro())
		if err != nil {
			return t.s.translate("prune login failures", err)
		}
		p.LoginFailures, err = res.RowsAffected()
		return t.s.translate("prune login failures", err)
	})
	return p, err
}

// pruneEvery is how often RunPrune prunes.
const pruneEvery = time.Hour

// RunPrune calls Prune every hour until ctx ends ("phivault serve" runs
// it), logging what it removed and its failures to logger.
func (s *Store) RunPrune(ctx context.Context, logger *slog.Logger) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		p, err := s.Prune(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			logger.WarnContext(ctx, "pruning authentication state failed", "err", err)
		case p.Sessions+p.LoginFailures > 0:
			logger.InfoContext(ctx, "pruned authentication state", "sessions", p.Sessions, "login_failure_counters", p.LoginFailures)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
