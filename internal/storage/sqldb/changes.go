package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

var _ storage.ChangeFeed = (*Store)(nil)

// ChangesSince implements storage.ChangeFeed (table authz_changes,
// migration 0032: rows appended by triggers on resources).
func (s *Store) ChangesSince(ctx context.Context, cursor int64) ([]storage.Change, int64, error) {
	if cursor < 0 {
		return nil, 0, fmt.Errorf("changes since: negative cursor %d", cursor)
	}
	rows, err := s.r().query(ctx, s.d.ChangesSince, cursor, storage.MaxChanges)
	if err != nil {
		return nil, 0, s.translate("changes since", err)
	}
	defer rows.Close()
	var out []storage.Change
	next := cursor
	for rows.Next() {
		var seq sql.NullInt64
		var owner sql.NullString
		if err := rows.Scan(&seq, &owner, &next); err != nil {
			return nil, 0, s.translate("changes since", err)
		}
		if seq.Valid {
			out = append(out, storage.Change{Seq: seq.Int64, Owner: owner.String})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, s.translate("changes since", err)
	}
	return out, next, nil
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
