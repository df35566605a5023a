package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

var (
	_ login.Store = (*Logins)(nil)
	_ login.Tx    = (*tx)(nil)
)

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

// LockLoginState implements login.Tx.
func (t *tx) LockLoginState(ctx context.Context, key []byte) (password.AccountState, error) {
	if err := validKey(key); err != nil {
		return password.AccountState{}, err
	}
	// Make the row exist so the locking read below serialises
	// concurrent first failures on PostgreSQL (a lock on no row would
	// let both insert and one failure be lost).
	const qi = `INSERT INTO login_failures (login_key, failures, locked_until, updated) VALUES (?, 0, 0, ?) ON CONFLICT (login_key) DO NOTHING`
	if _, err := t.exec(ctx, qi, key, t.s.now().UnixMicro()); err != nil {
		return password.AccountState{}, t.s.translate("login state", err)
	}
	return loginState(ctx, t, t.s, key, t.s.d.LockRows)
}

// PutLoginState implements login.Tx.
func (t *tx) PutLoginState(ctx context.Context, key []byte, st password.AccountState) error {
	if err := validKey(key); err != nil {
		return err
	}
	return putLoginState(ctx, t, key, st)
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

// setUserColumns writes a changed user row read by LockUser in the
// same transaction, with its new MAC.
func (t *tx) setUserColumns(ctx context.Context, op string, u identity.User, updated int64) error {
	_, err := t.exec(ctx, `UPDATE users SET mfa_enrolled = ?, password_hash = ?, updated = ?, mac = ? WHERE id = ?`,
		u.MFAEnrolled, u.PasswordHash, updated, t.s.userMAC(u), u.ID)
	return t.s.translate(op, err)
}

// SetUserAuth implements login.Tx.
func (t *tx) SetUserAuth(ctx context.Context, op string, u identity.User, updated time.Time) error {
	return t.setUserColumns(ctx, op, u, updated.UnixMicro())
}

// PutTOTPSecret implements login.Tx.
func (t *tx) PutTOTPSecret(ctx context.Context, userID string, sealed []byte) error {
	const q = `INSERT INTO totp_credentials (user_id, secret_ciphertext, last_step) VALUES (?, ?, 0)
ON CONFLICT (user_id) DO UPDATE SET secret_ciphertext = excluded.secret_ciphertext, last_step = 0`
	if _, err := t.exec(ctx, q, userID, sealed); err != nil {
		return t.s.translate("put totp", err)
	}
	return nil
}

// AdvanceTOTPStep implements login.Tx.
func (t *tx) AdvanceTOTPStep(ctx context.Context, op, userID string, from, to int64) error {
	res, err := t.exec(ctx, `UPDATE totp_credentials SET last_step = ? WHERE user_id = ? AND last_step = ?`, to, userID, from)
	return affected(t, op, res, err)
}

// DeleteTOTP implements login.Tx.
func (t *tx) DeleteTOTP(ctx context.Context, op, userID string) error {
	if _, err := t.exec(ctx, `DELETE FROM totp_credentials WHERE user_id = ?`, userID); err != nil {
		return t.s.translate(op, err)
	}
	return nil
}

// DeleteRecoveryCode implements login.Tx.
func (t *tx) DeleteRecoveryCode(ctx context.Context, op, userID string, hash []byte) error {
	res, err := t.exec(ctx, `DELETE FROM recovery_codes WHERE user_id = ? AND hash = ?`, userID, hash)
	return affected(t, op, res, err)
}

// ReplaceRecoveryCodes implements login.Tx: each code's row carries its
// MAC (ADR 0022).
func (t *tx) ReplaceRecoveryCodes(ctx context.Context, op, userID string, hashes [][]byte) error {
	if _, err := t.exec(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
		return t.s.translate(op, err)
	}
	for _, h := range hashes {
		if _, err := t.exec(ctx, `INSERT INTO recovery_codes (user_id, hash, mac) VALUES (?, ?, ?)`, userID, h, t.s.rowMAC("recovery_codes", userID, h)); err != nil {
			return t.s.translate(op, err)
		}
	}
	return nil
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

// RevokeUserSession implements login.Tx.
func (t *tx) RevokeUserSession(ctx context.Context, op, userID, id string) error {
	if !lookupable(userID) || !lookupable(id) {
		return wrapOp(op, storage.ErrNotFound)
	}
	res, err := t.exec(ctx, `UPDATE sessions SET revoked = ?, mac = NULL WHERE id = ? AND user_id = ? AND NOT revoked`, true, id, userID)
	if err := affected(t, op, res, err); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return wrapOp(op, storage.ErrNotFound)
		}
		return err
	}
	return nil
}

// InsertSession implements login.Tx.
func (t *tx) InsertSession(ctx context.Context, op string, x session.Session, tokenHash []byte) error {
	return t.insertSession(ctx, op, x, tokenHash)
}

// UseChallenge implements login.Tx.
func (t *tx) UseChallenge(ctx context.Context, u login.CeremonyUse) error {
	return useChallenge(ctx, t, u)
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
