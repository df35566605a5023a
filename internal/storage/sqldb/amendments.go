package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/phivault/phivault/internal/privacy"
	"github.com/phivault/phivault/internal/storage"
)

// Correction requests (table amendments, migration 0031): a patient's
// request to amend their record and the privacy officer's decision.
// The texts arrive sealed. The changes are written by package privacy
// through the unit of work (privacy.AmendTx, ADR 0024).

// MaxAmendments bounds one listing (STYLE rule 24).
const MaxAmendments = 500

var _ privacy.AmendTx = (*tx)(nil)

const amendmentCols = `id, patient, requester, part, created, request, state, decided, decider, reason`

// InsertAmendment implements privacy.AmendTx: a, open. A second request
// with the same id is storage.ErrConflict.
func (t *tx) InsertAmendment(ctx context.Context, a storage.Amendment) error {
	_, err := t.exec(ctx, `INSERT INTO amendments (`+amendmentCols+`) VALUES (?, ?, ?, ?, ?, ?, 'open', 0, '', NULL)`,
		a.ID, a.Patient, a.Requester, a.Part, a.Created.UnixMicro(), a.Request)
	return t.s.translate("create amendment", err)
}

// DecideAmendment implements privacy.AmendTx: the open request id is
// accepted or denied (state) by decider at at, with a sealed reason (or
// nil). It returns storage.ErrNotFound for no such request and
// storage.ErrConflict for one already decided.
func (t *tx) DecideAmendment(ctx context.Context, id, state, decider string, at time.Time, reason []byte) error {
	if state != "accepted" && state != "denied" {
		return errors.New("decide amendment: state must be accepted or denied")
	}
	if at.IsZero() || at.UnixMicro() == 0 {
		return errors.New("decide amendment: zero time")
	}
	res, err := t.exec(ctx, `UPDATE amendments SET state = ?, decided = ?, decider = ?, reason = ? WHERE id = ? AND state = 'open'`,
		state, at.UnixMicro(), decider, nullBytes(nonEmpty(reason)), id)
	if err != nil {
		return t.s.translate("decide amendment", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return t.s.translate("decide amendment", err)
	} else if n == 1 {
		return nil
	}
	rows, err := t.query(ctx, `SELECT state FROM amendments WHERE id = ?`, id)
	if err != nil {
		return t.s.translate("decide amendment", err)
	}
	defer rows.Close()
	if rows.Next() {
		return wrapOp("decide amendment", storage.ErrConflict)
	}
	return wrapOp("decide amendment", storage.ErrNotFound)
}

// Amendments returns up to limit (at most MaxAmendments) requests,
// newest first: patient's ("Patient/<id>") when not "", else everyone's;
// open ones only when open.
func (s *Store) Amendments(ctx context.Context, patient string, open bool, limit int) ([]storage.Amendment, error) {
	if limit <= 0 || limit > MaxAmendments {
		limit = MaxAmendments
	}
	q := `SELECT ` + amendmentCols + ` FROM amendments WHERE 1 = 1`
	var args []any
	if patient != "" {
		q += ` AND patient = ?`
		args = append(args, patient)
	}
	if open {
		q += ` AND state = 'open'`
	}
	q += ` ORDER BY created DESC, id LIMIT ?`
	args = append(args, limit)
	rows, err := s.r().query(ctx, q, args...)
	if err != nil {
		return nil, s.translate("amendments", err)
	}
	defer rows.Close()
	var out []storage.Amendment
	for rows.Next() {
		a, err := scanAmendment(rows)
		if err != nil {
			return nil, s.translate("amendments", err)
		}
		out = append(out, a)
	}
	return out, s.translate("amendments", rows.Err())
}

// Amendment returns request id, or storage.ErrNotFound.
func (s *Store) Amendment(ctx context.Context, id string) (storage.Amendment, error) {
	rows, err := s.r().query(ctx, `SELECT `+amendmentCols+` FROM amendments WHERE id = ?`, id)
	if err != nil {
		return storage.Amendment{}, s.translate("amendment", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return storage.Amendment{}, s.translate("amendment", err)
		}
		return storage.Amendment{}, wrapOp("amendment", storage.ErrNotFound)
	}
	a, err := scanAmendment(rows)
	if err != nil {
		return storage.Amendment{}, s.translate("amendment", err)
	}
	return a, nil
}

func scanAmendment(rows *sql.Rows) (storage.Amendment, error) {
	var a storage.Amendment
	var created, decided int64
	if err := rows.Scan(&a.ID, &a.Patient, &a.Requester, &a.Part, &created, &a.Request, &a.State, &decided, &a.Decider, &a.Reason); err != nil {
		return a, err
	}
	a.Created = fromMicros(created)
	if decided != 0 {
		a.Decided = fromMicros(decided)
	}
	return a, nil
}
