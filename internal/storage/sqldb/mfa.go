package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

var _ login.Store = (*Logins)(nil)

// maxLoginKey bounds the lockout key (a blind-index output is 32 bytes).
const maxLoginKey = 64

// Logins implements login.Store on the login_failures, totp_credentials,
// recovery_codes and sessions tables. It is safe for concurrent use.
type Logins struct{ s *Store }

// Logins returns the login store over this database.
func (s *Store) Logins() *Logins { return &Logins{s: s} }

func validKey(key []byte) error {
	if len(key) == 0 || len(key) > maxLoginKey {
		return errors.New("login state: key must be 1 to 64 bytes")
	}
	return nil
}

func loginState(ctx context.Context, r runner, s *Store, key []byte, lock string) (password.AccountState, error) {
	rows, err := r.query(ctx, `SELECT r.failures, r.locked_until FROM login_failures r WHERE r.login_key = ?`+lock, key)
	if err != nil {
		return password.AccountState{}, s.translate("login state", err)
	}
	defer rows.Close()
	var st password.AccountState
	if rows.Next() {
		var failures, locked int64
		if err := rows.Scan(&failures, &locked); err != nil {
			return password.AccountState{}, s.translate("login state", err)
		}
		st.Failures = int(failures)
		if locked != 0 {
			st.LockedUntil = fromMicros(locked)
		}
	}
	return st, s.translate("login state", rows.Err())
}

// LoginState implements login.Store.
func (l *Logins) LoginState(ctx context.Context, key []byte) (password.AccountState, error) {
	if err := validKey(key); err != nil {
		return password.AccountState{}, err
	}
	return loginState(ctx, l.s.r(), l.s, key, "")
}

// UpdateLoginState implements login.Store.
func (l *Logins) UpdateLoginState(ctx context.Context, key []byte, fn func(password.AccountState) (password.AccountState, []storage.AuditRecord, error)) error {
	if err := validKey(key); err != nil {
		return err
	}
	return l.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		// Make the row exist so the locking read below serialises
		// concurrent first failures on PostgreSQL (a lock on no row would
		// let both insert and one failure be lost).
		const qi = `INSERT INTO login_failures (login_key, failures, locked_until, updated) VALUES (?, 0, 0, ?) ON CONFLICT (login_key) DO NOTHING`
		if _, err := t.exec(ctx, qi, key, t.s.now().UnixMicro()); err != nil {
			return t.s.translate("login state", err)
		}
		cur, err := loginState(ctx, t, t.s, key, t.s.d.LockRows)
		if err != nil {
			return err
		}
		next, recs, err := fn(cur)
		if err != nil {
			return err
		}
		if err := putLoginState(ctx, t, key, next); err != nil {
			return err
		}
		return t.AppendAudit(ctx, recs...)
	})
}

func putLoginState(ctx context.Context, t *tx, key []byte, st password.AccountState) error {
	if st == (password.AccountState{}) {
		_, err := t.exec(ctx, `DELETE FROM login_failures WHERE login_key = ?`, key)
		return t.s.translate("reset login state", err)
	}
	var locked int64
	if !st.LockedUntil.IsZero() {
		locked = st.LockedUntil.UnixMicro()
	}
	const q = `INSERT INTO login_failures (login_key, failures, locked_until, updated) VALUES (?, ?, ?, ?)
ON CONFLICT (login_key) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until, updated = excluded.updated`
	_, err := t.exec(ctx, q, key, int64(st.Failures), locked, t.s.now().UnixMicro())
	return t.s.translate("store login state", err)
}

// TOTP implements login.Store.
func (l *Logins) TOTP(ctx context.Context, userID string) (login.TOTPCredential, error) {
	if !lookupable(userID) {
		return login.TOTPCredential{}, wrapOp("totp credential", storage.ErrNotFound)
	}
	rows, err := l.s.r().query(ctx, `SELECT secret_ciphertext, last_step FROM totp_credentials WHERE user_id = ?`, userID)
	if err != nil {
		return login.TOTPCredential{}, l.s.translate("totp credential", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return login.TOTPCredential{}, l.s.translate("totp credential", err)
		}
		return login.TOTPCredential{}, wrapOp("totp credential", storage.ErrNotFound)
	}
	var c login.TOTPCredential
	if err := rows.Scan(&c.Sealed, &c.LastStep); err != nil {
		return login.TOTPCredential{}, l.s.translate("totp credential", err)
	}
	return c, nil
}

// enrolled reads (and on PostgreSQL locks) the user's MFA flag; a row
// whose MAC does not verify is not found.
func enrolled(ctx context.Context, t *tx, op, userID string) (bool, error) {
	u, err := t.lockedUser(ctx, op, userID)
	if err != nil {
		return false, err
	}
	return u.MFAEnrolled, nil
}

// lockedUser reads (and on PostgreSQL locks) user id in t, verifying
// its MAC: a row that does not verify is not found.
func (t *tx) lockedUser(ctx context.Context, op, id string) (identity.User, error) {
	rows, err := t.query(ctx, `SELECT `+userCols+` FROM users r WHERE r.id = ?`+t.s.d.LockRows, id)
	return oneUser(t.s, op, rows, err)
}

// setUserColumns writes a changed user row read by lockedUser in the
// same transaction, with its new MAC.
func (t *tx) setUserColumns(ctx context.Context, op string, u identity.User, updated int64) error {
	_, err := t.exec(ctx, `UPDATE users SET mfa_enrolled = ?, password_hash = ?, updated = ?, mac = ? WHERE id = ?`,
		u.MFAEnrolled, u.PasswordHash, updated, t.s.userMAC(u), u.ID)
	return t.s.translate(op, err)
}

// PutTOTP implements login.Store.
func (l *Logins) PutTOTP(ctx context.Context, userID string, sealed []byte, rec storage.AuditRecord) error {
	if !lookupable(userID) {
		return wrapOp("put totp", storage.ErrNotFound)
	}
	if len(sealed) == 0 {
		return errors.New("put totp: empty secret")
	}
	return l.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		e, err := enrolled(ctx, t, "put totp", userID)
		if err != nil {
			return err
		}
		if e {
			return wrapOp("put totp: user already enrolled", storage.ErrConflict)
		}
		const q = `INSERT INTO totp_credentials (user_id, secret_ciphertext, last_step) VALUES (?, ?, 0)
ON CONFLICT (user_id) DO UPDATE SET secret_ciphertext = excluded.secret_ciphertext, last_step = 0`
		if _, err := t.exec(ctx, q, userID, sealed); err != nil {
			return t.s.translate("put totp", err)
		}
		return t.AppendAudit(ctx, rec)
	})
}

// RecoveryHashes implements login.Store.
func (l *Logins) RecoveryHashes(ctx context.Context, userID string) ([][]byte, error) {
	if !lookupable(userID) {
		return nil, nil
	}
	rows, err := l.s.r().query(ctx, `SELECT hash, mac FROM recovery_codes WHERE user_id = ? ORDER BY hash`, userID)
	if err != nil {
		return nil, l.s.translate("recovery codes", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var h, mac []byte
		if err := rows.Scan(&h, &mac); err != nil {
			return nil, l.s.translate("recovery codes", err)
		}
		// A code whose MAC does not verify was not issued by the server
		// (ADR 0022): left out, with an integrity alarm.
		if !l.s.rowOK(mac, "recovery_codes", userID, h) {
			continue
		}
		out = append(out, h)
	}
	return out, l.s.translate("recovery codes", rows.Err())
}

// affected returns storage.ErrConflict (wrapped with op) unless res
// changed exactly one row.
func affected(t *tx, op string, res sql.Result, err error) error {
	if err != nil {
		return t.s.translate(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return t.s.translate(op, err)
	}
	if n != 1 {
		return wrapOp(op, storage.ErrConflict)
	}
	return nil
}

// Commit implements login.Store.
func (l *Logins) Commit(ctx context.Context, c login.Commit) error {
	if !lookupable(c.UserID) || c.Session.UserID != c.UserID {
		return errors.New("commit login: session and user do not match")
	}
	if len(c.TokenHash) == 0 {
		return errors.New("commit login: empty token hash")
	}
	if err := validText("commit login: session id", c.Session.ID); err != nil {
		return err
	}
	return l.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		if c.TOTP != nil {
			res, err := t.exec(ctx, `UPDATE totp_credentials SET last_step = ? WHERE user_id = ? AND last_step = ?`, c.TOTP.To, c.UserID, c.TOTP.From)
			if err := affected(t, "commit login: totp step", res, err); err != nil {
				return err
			}
		}
		if c.UseRecovery != nil {
			res, err := t.exec(ctx, `DELETE FROM recovery_codes WHERE user_id = ? AND hash = ?`, c.UserID, c.UseRecovery)
			if err := affected(t, "commit login: recovery code", res, err); err != nil {
				return err
			}
		}
		if c.Challenge != nil {
			if err := useChallenge(ctx, t, *c.Challenge); err != nil {
				return err
			}
		}
		if err := commitPasskey(ctx, t, c); err != nil {
			return err
		}
		if c.Enrol {
			now := t.s.now().UTC().Truncate(time.Microsecond).UnixMicro()
			u, err := t.lockedUser(ctx, "commit login: enrol", c.UserID)
			if err != nil {
				return err
			}
			if u.MFAEnrolled {
				return wrapOp("commit login: enrol", storage.ErrConflict)
			}
			u.MFAEnrolled = true
			if err := t.setUserColumns(ctx, "commit login: enrol", u, now); err != nil {
				return err
			}
			if _, err := t.exec(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, c.UserID); err != nil {
				return t.s.translate("commit login: recovery codes", err)
			}
			for _, h := range c.RecoveryHashes {
				if _, err := t.exec(ctx, `INSERT INTO recovery_codes (user_id, hash, mac) VALUES (?, ?, ?)`, c.UserID, h, t.s.rowMAC("recovery_codes", c.UserID, h)); err != nil {
					return t.s.translate("commit login: recovery codes", err)
				}
			}
		}
		if c.Password != nil {
			if c.Password.To == "" {
				return errors.New("commit login: empty password hash")
			}
			now := t.s.now().UTC().Truncate(time.Microsecond).UnixMicro()
			u, err := t.lockedUser(ctx, "commit login: password", c.UserID)
			if err != nil {
				return err
			}
			if u.PasswordHash != c.Password.From || u.Disabled {
				return wrapOp("commit login: password", storage.ErrConflict)
			}
			u.PasswordHash = c.Password.To
			if err := t.setUserColumns(ctx, "commit login: password", u, now); err != nil {
				return err
			}
		}
		if c.RevokeSessions {
			if _, err := t.exec(ctx, `UPDATE sessions SET revoked = ?, mac = NULL WHERE user_id = ? AND NOT revoked`, true, c.UserID); err != nil {
				return t.s.translate("commit login: revoking sessions", err)
			}
		}
		if c.LoginKey != nil {
			if err := validKey(c.LoginKey); err != nil {
				return err
			}
			if err := putLoginState(ctx, t, c.LoginKey, password.AccountState{}); err != nil {
				return err
			}
		}
		if err := t.insertSession(ctx, "commit login: session", c.Session, c.TokenHash); err != nil {
			return err
		}
		return t.AppendAudit(ctx, c.Audit...)
	})
}

// RevokeSession implements login.Store.
func (l *Logins) RevokeSession(ctx context.Context, userID, id string, rec storage.AuditRecord) error {
	if !lookupable(userID) || !lookupable(id) {
		return wrapOp("revoke session", storage.ErrNotFound)
	}
	return l.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		res, err := t.exec(ctx, `UPDATE sessions SET revoked = ?, mac = NULL WHERE id = ? AND user_id = ? AND NOT revoked`, true, id, userID)
		if err := affected(t, "revoke session", res, err); err != nil {
			if errors.Is(err, storage.ErrConflict) {
				return wrapOp("revoke session", storage.ErrNotFound)
			}
			return err
		}
		return t.AppendAudit(ctx, rec)
	})
}

// useChallenge records a login challenge as used, pruning expired ones.
// A challenge used before is login.ErrInvalidChallenge (wrapping
// storage.ErrConflict): the primary key makes a second use fail even
// when two processes race.
func useChallenge(ctx context.Context, t *tx, u login.CeremonyUse) error {
	if len(u.Key) == 0 || len(u.Key) > maxLoginKey {
		return errors.New("use login challenge: key must be 1 to 64 bytes")
	}
	if _, err := t.exec(ctx, `DELETE FROM login_challenges WHERE expires < ?`, t.s.now().UnixMicro()); err != nil {
		return t.s.translate("use login challenge: prune", err)
	}
	res, err := t.exec(ctx, `INSERT INTO login_challenges (use_key, expires) VALUES (?, ?) ON CONFLICT (use_key) DO NOTHING`,
		u.Key, u.Expires.UnixMicro())
	if err := affected(t, "use login challenge", res, err); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return fmt.Errorf("%w: %w", login.ErrInvalidChallenge, err)
		}
		return err
	}
	return nil
}
