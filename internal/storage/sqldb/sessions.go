package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/storage"
)

var _ session.Store = (*Sessions)(nil)

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

// RevokeAudited revokes live session id of any user and appends the
// audit record audit builds from the session's owner, in one
// transaction, and returns the owner's id (the security-admin
// surface). An error wrapping session.ErrNotFound (and
// storage.ErrNotFound) means there is no such unrevoked session. audit
// may run more than once (retries); it must have no side effects.
func (ss *Sessions) RevokeAudited(ctx context.Context, id string, audit func(userID string) (storage.AuditRecord, error)) (string, error) {
	if !lookupable(id) {
		return "", sessionErr(wrapOp("revoke session", storage.ErrNotFound))
	}
	var owner string
	err := ss.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		rows, err := t.query(ctx, `SELECT user_id FROM sessions WHERE id = ? AND NOT revoked`+t.s.d.LockRows, id)
		if err != nil {
			return t.s.translate("revoke session", err)
		}
		var uid string
		found := rows.Next()
		if found {
			err = rows.Scan(&uid)
		}
		if err := errors.Join(err, rows.Err(), rows.Close()); err != nil {
			return t.s.translate("revoke session", err)
		}
		if !found {
			return sessionErr(wrapOp("revoke session", storage.ErrNotFound))
		}
		res, err := t.exec(ctx, `UPDATE sessions SET revoked = ?, mac = NULL WHERE id = ? AND NOT revoked`, true, id)
		if err := affected(t, "revoke session", res, err); err != nil {
			return err
		}
		rec, err := audit(uid)
		if err != nil {
			return err
		}
		if err := t.AppendAudit(ctx, rec); err != nil {
			return err
		}
		owner = uid
		return nil
	})
	return owner, err
}
