package sqldb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/identity/account"
	"github.com/phivault/phivault/internal/storage"
)

// This file holds the plain statements of the audited account changes
// (account.Tx): the rules (what to check, what to revoke, which audit
// record) are package account's, run on this store's unit of work
// (NewUnit[account.Tx], ADR 0024).

var _ account.Tx = (*tx)(nil)

// LockUser implements account.Tx: the users row of id, locked until
// commit on PostgreSQL.
func (t *tx) LockUser(ctx context.Context, op, id string) (identity.User, error) {
	if !lookupable(id) {
		return identity.User{}, identityErr(wrapOp(op, storage.ErrNotFound))
	}
	q := `SELECT ` + userCols + ` FROM users r WHERE r.id = ?` + t.s.d.LockRows
	rows, err := t.query(ctx, q, id)
	return oneUser(t.s, op, rows, err)
}

// InsertUser implements account.Tx.
func (t *tx) InsertUser(ctx context.Context, u identity.User) error {
	return t.insertUser(ctx, u, u.Created)
}

// UpdateUser implements account.Tx.
func (t *tx) UpdateUser(ctx context.Context, op string, was, cur identity.User) error {
	return t.updateUser(ctx, op, was, cur)
}

// ClearSecondFactors implements account.Tx.
func (t *tx) ClearSecondFactors(ctx context.Context, op, userID string) error {
	for _, q := range []string{
		`DELETE FROM totp_credentials WHERE user_id = ?`,
		`DELETE FROM recovery_codes WHERE user_id = ?`,
		`DELETE FROM webauthn_credentials WHERE user_id = ?`,
	} {
		if _, err := t.exec(ctx, q, userID); err != nil {
			return t.s.translate(op+": clearing second factors", err)
		}
	}
	return nil
}

// RevokeUserSessions implements account.Tx.
func (t *tx) RevokeUserSessions(ctx context.Context, op, userID string) error {
	const q = `UPDATE sessions SET revoked = ?, mac = NULL WHERE user_id = ? AND NOT revoked`
	if _, err := t.exec(ctx, q, true, userID); err != nil {
		return t.s.translate(op+": revoking sessions", err)
	}
	return nil
}

// RaiseAlert implements account.Tx: the alert goes to the authz_alerts
// table of the break-the-glass desk, so the privacy officer sees it
// with the others.
func (t *tx) RaiseAlert(ctx context.Context, a authz.Alert) error {
	return t.putAlert(ctx, a)
}

// EnrolmentUser returns the id of the user whose outstanding enrolment
// secret hashes to hash (a hash of the given kind: storage.HashHMAC, or
// storage.HashSHA256 for secrets issued before ADR 0022), if it has not
// expired at now; otherwise an error wrapping identity.ErrNotFound. A
// row whose MAC does not verify (row authentication on) is not found.
// Lookups are by hash, so timing reveals nothing about stored secrets.
func (u *Users) EnrolmentUser(ctx context.Context, hash []byte, kind string, now time.Time) (string, error) {
	id, expires, err := enrolmentRow(ctx, u.s, u.s.r(), hash, kind)
	if err != nil {
		return "", err
	}
	if !now.Before(fromMicros(expires)) {
		return "", identityErr(wrapOp("enrolment secret", storage.ErrNotFound))
	}
	return id, nil
}

// EnrolmentOwner implements account.Tx: the row must verify here too,
// not only at EnrolmentUser.
func (t *tx) EnrolmentOwner(ctx context.Context, hash []byte, kind string) (string, error) {
	id, _, err := enrolmentRow(ctx, t.s, t, hash, kind)
	return id, err
}

// DeleteEnrolment implements account.Tx.
func (t *tx) DeleteEnrolment(ctx context.Context, op, userID string, hash []byte, at time.Time) error {
	const q = `DELETE FROM enrolment_secrets WHERE user_id = ? AND hash = ? AND expires > ?`
	res, err := t.exec(ctx, q, userID, hash, at.UnixMicro())
	if err != nil {
		return identityErr(t.s.translate(op, err))
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return identityErr(errors.Join(wrapOp(op+": enrolment secret", storage.ErrNotFound), err))
	}
	return nil
}

// enrolmentRow reads and verifies the enrolment secret row of hash.
func enrolmentRow(ctx context.Context, s *Store, r runner, hash []byte, kind string) (string, int64, error) {
	const q = `SELECT user_id, hash_kind, expires, mac FROM enrolment_secrets WHERE hash = ?`
	rows, err := r.query(ctx, q, hash)
	if err != nil {
		return "", 0, identityErr(s.translate("enrolment secret", err))
	}
	defer rows.Close()
	var id, stored string
	var expires int64
	var mac []byte
	found := rows.Next()
	if found {
		if err := rows.Scan(&id, &stored, &expires, &mac); err != nil {
			return "", 0, identityErr(s.translate("enrolment secret", err))
		}
	}
	if err := rows.Err(); err != nil {
		return "", 0, identityErr(s.translate("enrolment secret", err))
	}
	if !found || stored != kind || !s.rowOK(mac, "enrolment_secrets", id, enrolmentFields(hash, stored, expires)...) {
		return "", 0, identityErr(wrapOp("enrolment secret", storage.ErrNotFound))
	}
	return id, expires, nil
}

// enrolmentFields are the MAC'd columns of an enrolment_secrets row
// (its primary key, user_id, is bound as the row id).
func enrolmentFields(hash []byte, kind string, expires int64) [][]byte {
	return [][]byte{hash, macStr(kind), macInt(expires)}
}

// PutEnrolment implements account.Tx: it replaces user id's
// outstanding enrolment secret. With row authentication the hash must
// be keyed (storage.HashHMAC).
func (t *tx) PutEnrolment(ctx context.Context, id string, e account.Enrolment, now time.Time) error {
	if len(e.Hash) == 0 {
		return errors.New("store enrolment secret: empty hash")
	}
	kind := e.HashKind
	if kind == "" {
		kind = storage.HashSHA256
	}
	if t.s.RowAuthenticated() && kind != storage.HashHMAC {
		return fmt.Errorf("store enrolment secret: hash kind %q, want %q (ADR 0022)", kind, storage.HashHMAC)
	}
	if _, err := t.exec(ctx, `DELETE FROM enrolment_secrets WHERE user_id = ?`, id); err != nil {
		return t.s.translate("store enrolment secret", err)
	}
	const q = `INSERT INTO enrolment_secrets (user_id, hash, created, expires, hash_kind, mac) VALUES (?, ?, ?, ?, ?, ?)`
	mac := t.s.rowMAC("enrolment_secrets", id, enrolmentFields(e.Hash, kind, e.Expires.UnixMicro())...)
	if _, err := t.exec(ctx, q, id, e.Hash, now.UnixMicro(), e.Expires.UnixMicro(), kind, mac); err != nil {
		return identityErr(t.s.translate("store enrolment secret", err))
	}
	return nil
}
