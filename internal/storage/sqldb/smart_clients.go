package sqldb

import (
	"context"
	"database/sql"
	"errors"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/storage"
)

// Client administration for the web console: the list, and the plain
// statements of smart.AdminTx, on which package smart's audited
// registration, approval decisions and disabling run (ADR 0020, 0024).

// MaxClientList bounds one listing of clients.
const MaxClientList = 500

// Clients lists up to limit clients (1..MaxClientList), newest first.
func (ss *Smart) Clients(ctx context.Context, limit int) ([]smart.Client, error) {
	if limit < 1 || limit > MaxClientList {
		limit = MaxClientList
	}
	const q = `SELECT ` + clientCols + `, mac FROM smart_clients ORDER BY created DESC, id LIMIT ?`
	rows, err := ss.s.r().query(ctx, q, limit)
	if err != nil {
		return nil, ss.s.translate("list clients", err)
	}
	defer rows.Close()
	var out []smart.Client
	for rows.Next() {
		c, err := scanClient(ss.s, rows)
		if errors.Is(err, errTamperedClient) {
			continue // alarmed; to every caller it does not exist
		}
		if err != nil {
			return nil, ss.s.translate("list clients", err)
		}
		out = append(out, c)
	}
	return out, ss.s.translate("list clients", rows.Err())
}

var _ smart.AdminTx = (*tx)(nil)

// InsertClient implements smart.AdminTx.
func (t *tx) InsertClient(ctx context.Context, c smart.Client) error {
	return t.insertClient(ctx, c)
}

// LockClient implements smart.AdminTx.
func (t *tx) LockClient(ctx context.Context, op, id string) (smart.Client, error) {
	return t.lockedClient(ctx, op, id)
}

// DisableClient implements smart.AdminTx.
func (t *tx) DisableClient(ctx context.Context, op, id string) error {
	if !lookupable(id) {
		return wrapOp(op, storage.ErrNotFound)
	}
	// Disabling is final and grants nothing: the MAC goes, so a client
	// re-enabled in SQL never verifies (ADR 0022).
	res, err := t.exec(ctx, `UPDATE smart_clients SET disabled = ?, mac = NULL WHERE id = ?`, true, id)
	if err != nil {
		return t.s.translate(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return t.s.translate(op, err)
	}
	if n == 0 {
		return wrapOp(op, storage.ErrNotFound)
	}
	return nil
}

// SetClientApproval implements smart.AdminTx; the row's MAC is
// recomputed (it was read, verified and locked by LockClient).
func (t *tx) SetClientApproval(ctx context.Context, op, id string, from, to smart.ClientApproval, approvedBy string) error {
	var res sql.Result
	var err error
	if approvedBy != "" {
		if err := validText(op+": approver", approvedBy); err != nil {
			return err
		}
		res, err = t.exec(ctx, `UPDATE smart_clients SET approval = ?, approved_by = ? WHERE id = ? AND approval = ?`,
			string(to), approvedBy, id, string(from))
	} else {
		res, err = t.exec(ctx, `UPDATE smart_clients SET approval = ? WHERE id = ? AND approval = ?`,
			string(to), id, string(from))
	}
	if err := affected(t, op, res, err); err != nil {
		return err
	}
	return t.remacClient(ctx, op, id)
}
