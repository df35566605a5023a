package sqldb

import (
	"context"
	"fmt"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

var _ storage.ChangeFeed = (*Store)(nil)

// RecentChanges implements storage.ChangeFeed (table authz_changes,
// migration 0032: rows appended by triggers on resources).
func (s *Store) RecentChanges(ctx context.Context, window time.Duration) ([]storage.Change, error) {
	if window <= 0 {
		return nil, fmt.Errorf("recent changes: window %v must be positive", window)
	}
	q := `SELECT seq, owner FROM authz_changes WHERE at >= ` + s.d.NowMicros + ` - ? ORDER BY seq LIMIT ?`
	rows, err := s.r().query(ctx, q, window.Microseconds(), storage.MaxChanges)
	if err != nil {
		return nil, s.translate("recent changes", err)
	}
	defer rows.Close()
	var out []storage.Change
	for rows.Next() {
		var c storage.Change
		if err := rows.Scan(&c.Seq, &c.Owner); err != nil {
			return nil, s.translate("recent changes", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.translate("recent changes", err)
	}
	return out, nil
}

// PruneChanges implements storage.ChangeFeed.
func (s *Store) PruneChanges(ctx context.Context, keep time.Duration) (int64, error) {
	if keep <= 0 {
		return 0, fmt.Errorf("prune changes: keep %v must be positive", keep)
	}
	var n int64
	err := s.Update(ctx, func(stx storage.Tx) error {
		t, ok := stx.(*tx)
		if !ok {
			return fmt.Errorf("prune changes: unexpected transaction %T", stx)
		}
		res, err := t.exec(ctx, `DELETE FROM authz_changes WHERE at < `+s.d.NowMicros+` - ?`, keep.Microseconds())
		if err != nil {
			return t.s.translate("prune changes", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
