package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/storage"
)

var (
	_ session.Store = (*Sessions)(nil)
	_ session.Tx    = (*tx)(nil)
)

// Sessions implements session.Store on the sessions table: only a hash
// of each token is stored (with row authentication, the keyed hash of
// its SHA-256, and a MAC of the row: ADR 0022). It is safe for
// concurrent use.
type Sessions struct{ s *Store }

// Sessions returns the session store over this database.
func (s *Store) Sessions() *Sessions { return &Sessions{s: s} }

// sessionErr maps storage.ErrNotFound to session's sentinel too.
func sessionErr(err error) error {
	if err != nil && errors.Is(err, storage.ErrNotFound) {
		return &kindError{kind: session.ErrNotFound, err: err}
	}
	return err
}

const sessionCols = `id, user_id, created, last_seen, expires_absolute, idle_seconds, revoked, mfa, address, token_hash, hash_kind, mac`

// scanSessions reads sessions rows. A live row whose MAC does not verify
// (row authentication on) is left out, with an integrity alarm; revoked
// rows grant nothing and are not checked.
func scanSessions(s *Store, rows *sql.Rows) ([]session.Session, error) {
	defer rows.Close()
	var out []session.Session
	for rows.Next() {
		var x session.Session
		var created, seen, expires, idle int64
		var hash, mac []byte
		var kind string
		if err := rows.Scan(&x.ID, &x.UserID, &created, &seen, &expires, &idle, &x.Revoked, &x.MFA, &x.Address, &hash, &kind, &mac); err != nil {
			return nil, err
		}
		if !x.Revoked && !s.rowOK(mac, "sessions", x.ID, sessionFields(x.UserID, hash, kind, created, expires, idle, x.MFA)...) {
			continue
		}
		x.Created, x.LastSeen, x.ExpiresAbsolute = fromMicros(created), fromMicros(seen), fromMicros(expires)
		x.IdleTimeout = time.Duration(idle) * time.Second
		out = append(out, x)
	}
	return out, rows.Err()
}

// Create implements session.Store.
func (ss *Sessions) Create(ctx context.Context, x session.Session, tokenHash []byte) error {
	if len(tokenHash) == 0 {
		return errors.New("create session: empty token hash")
	}
	if err := validText("create session: id", x.ID); err != nil {
		return err
	}
	if !lookupable(x.UserID) {
		return sessionErr(wrapOp("create session: user", storage.ErrNotFound))
	}
	return ss.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		// The foreign key backs this up; checking first gives callers a
		// sentinel instead of an engine-specific constraint error.
		const qc = `SELECT 1 FROM users WHERE id = ?`
		rows, err := t.query(ctx, qc, x.UserID)
		if err != nil {
			return t.s.translate("create session", err)
		}
		found := rows.Next()
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return t.s.translate("create session", err)
		}
		if !found {
			return sessionErr(wrapOp("create session: user", storage.ErrNotFound))
		}
		return t.insertSession(ctx, "create session", x, tokenHash)
	})
}

// ByTokenHash implements session.Store. hash is the SHA-256 of the
// token: the session is looked up by the keyed hash of it, then (a
// session from before ADR 0022) by hash itself on a row of that kind.
func (ss *Sessions) ByTokenHash(ctx context.Context, hash []byte) (session.Session, error) {
	stored, kind := ss.s.storedSessionHash(hash)
	x, err := ss.byStoredHash(ctx, stored, kind)
	if kind == storage.HashHMAC && errors.Is(err, storage.ErrNotFound) {
		x, err = ss.byStoredHash(ctx, hash, storage.HashSHA256)
	}
	return x, err
}

func (ss *Sessions) byStoredHash(ctx context.Context, hash []byte, kind string) (session.Session, error) {
	const q = `SELECT ` + sessionCols + ` FROM sessions WHERE token_hash = ? AND hash_kind = ?`
	rows, err := ss.s.r().query(ctx, q, hash, kind)
	if err != nil {
		return session.Session{}, ss.s.translate("session by token", err)
	}
	xs, err := scanSessions(ss.s, rows)
	if err != nil {
		return session.Session{}, ss.s.translate("session by token", err)
	}
	if len(xs) == 0 {
		return session.Session{}, sessionErr(wrapOp("session by token", storage.ErrNotFound))
	}
	return xs[0], nil
}

// Touch implements session.Store. The condition makes it monotonic, so
// concurrent requests never move LastSeen backwards.
func (ss *Sessions) Touch(ctx context.Context, id string, at time.Time) error {
	if !lookupable(id) {
		return nil
	}
	us := at.UnixMicro()
	return ss.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		const q = `UPDATE sessions SET last_seen = ? WHERE id = ? AND last_seen < ? AND NOT revoked`
		_, err := t.exec(ctx, q, us, id, us)
		return t.s.translate("touch session", err)
	})
}

// Revoke implements session.Store.
func (ss *Sessions) Revoke(ctx context.Context, id string) error {
	if !lookupable(id) {
		return sessionErr(wrapOp("revoke session", storage.ErrNotFound))
	}
	return ss.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		const q = `UPDATE sessions SET revoked = ?, mac = NULL WHERE id = ?`
		res, err := t.exec(ctx, q, true, id)
		if err != nil {
			return t.s.translate("revoke session", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return t.s.translate("revoke session", err)
		}
		if n == 0 {
			return sessionErr(wrapOp("revoke session", storage.ErrNotFound))
		}
		return nil
	})
}

// RevokeUser implements session.Store.
func (ss *Sessions) RevokeUser(ctx context.Context, userID string) (int64, error) {
	if !lookupable(userID) {
		return 0, nil
	}
	var n int64
	err := ss.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		const q = `UPDATE sessions SET revoked = ?, mac = NULL WHERE user_id = ? AND NOT revoked`
		res, err := t.exec(ctx, q, true, userID)
		if err != nil {
			return t.s.translate("revoke user sessions", err)
		}
		n, err = res.RowsAffected()
		return t.s.translate("revoke user sessions", err)
	})
	return n, err
}

// ListByUser implements session.Store.
func (ss *Sessions) ListByUser(ctx context.Context, userID string, limit int) ([]session.Session, error) {
	if limit < 1 {
		return nil, errors.New("list sessions: limit must be positive")
	}
	if !lookupable(userID) {
		return nil, nil
	}
	const q = `SELECT ` + sessionCols + ` FROM sessions WHERE user_id = ? AND NOT revoked ORDER BY created DESC, id LIMIT ?`
	rows, err := ss.s.r().query(ctx, q, userID, int64(limit))
	if err != nil {
		return nil, ss.s.translate("list sessions", err)
	}
	xs, err := scanSessions(ss.s, rows)
	return xs, ss.s.translate("list sessions", err)
}

// LockLiveSession implements session.Tx. The row is aliased r, which
// PostgreSQL's LockRows ("FOR UPDATE OF r") names: the statement it
// replaces (sqldb.Sessions.RevokeAudited) lacked the alias and failed
// there.
func (t *tx) LockLiveSession(ctx context.Context, op, id string) (string, error) {
	if !lookupable(id) {
		return "", sessionErr(wrapOp(op, storage.ErrNotFound))
	}
	rows, err := t.query(ctx, `SELECT r.user_id FROM sessions r WHERE r.id = ? AND NOT r.revoked`+t.s.d.LockRows, id)
	if err != nil {
		return "", t.s.translate(op, err)
	}
	var uid string
	found := rows.Next()
	if found {
		err = rows.Scan(&uid)
	}
	if err := errors.Join(err, rows.Err(), rows.Close()); err != nil {
		return "", t.s.translate(op, err)
	}
	if !found {
		return "", sessionErr(wrapOp(op, storage.ErrNotFound))
	}
	return uid, nil
}

// RevokeLiveSession implements session.Tx.
func (t *tx) RevokeLiveSession(ctx context.Context, op, id string) error {
	res, err := t.exec(ctx, `UPDATE sessions SET revoked = ?, mac = NULL WHERE id = ? AND NOT revoked`, true, id)
	return affected(t, op, res, err)
}
