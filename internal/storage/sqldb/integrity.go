package sqldb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/phivault/phivault/internal/storage"
)

// CheckIntegrity implements storage.IntegrityChecker: it runs the
// dialect's full integrity check (SQLite: PRAGMA integrity_check, which
// reads every page and checks every index against its table, beyond the
// quick_check at open). It returns an error wrapping storage.ErrCorrupt
// that names what the engine found, or nil for a sound database. An
// engine error that is not a finding (the database cannot be reached)
// is returned as it is.
func (s *Store) CheckIntegrity(ctx context.Context) error {
	if s.d.IntegrityCheck == "" {
		return nil
	}
	const advice = "; restore a backup (a copy of a live database must be made with a backup tool, not cp)"
	rows, err := s.reader.QueryContext(ctx, s.d.IntegrityCheck)
	if err != nil {
		return s.integrityError(err, advice)
	}
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			rows.Close()
			return s.integrityError(err, advice)
		}
		msgs = append(msgs, m)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return s.integrityError(err, advice)
	}
	if len(msgs) == 1 && msgs[0] == "ok" {
		return nil
	}
	if len(msgs) == 0 {
		msgs = []string{"no answer"}
	}
	return fmt.Errorf("%w: the %s integrity check found: %s%s", storage.ErrCorrupt, s.d.Name, strings.Join(msgs, "; "), advice)
}

// integrityError maps an error of the integrity check: the engine
// refusing to read a damaged page is a finding (ErrCorrupt).
func (s *Store) integrityError(err error, advice string) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if s.d.Corrupt != nil && s.d.Corrupt(err) {
		return fmt.Errorf("%w: the %s integrity check failed: %v%s", storage.ErrCorrupt, s.d.Name, err, advice)
	}
	return fmt.Errorf("checking the database's integrity: %w", s.translate("integrity check", err))
}
