package sqldb

import (
	"context"
	"errors"
	"time"

	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// This file holds the links of enterprise SSO identities (issuer,
// subject) to accounts (table sso_links, migration 0007): the lookup,
// and the plain statements of account.CreateLinked (ADR 0024).

// LinkedUser returns the account linked to the OIDC identity (issuer,
// subject), or an error wrapping identity.ErrNotFound.
func (u *Users) LinkedUser(ctx context.Context, issuer, subject string) (identity.User, error) {
	if !lookupable(issuer) || !lookupable(subject) {
		return identity.User{}, identityErr(wrapOp("sso linked user", storage.ErrNotFound))
	}
	rows, err := u.s.r().query(ctx, `SELECT user_id, created, mac FROM sso_links WHERE issuer = ? AND subject = ?`, issuer, subject)
	if err != nil {
		return identity.User{}, identityErr(u.s.translate("sso linked user", err))
	}
	var id string
	var created int64
	var mac []byte
	found := rows.Next()
	if found {
		err = rows.Scan(&id, &created, &mac)
	}
	if err := errors.Join(err, rows.Err(), rows.Close()); err != nil {
		return identity.User{}, identityErr(u.s.translate("sso linked user", err))
	}
	// A link inserted or moved to another account in SQL does not
	// verify (ADR 0022): the identity is linked to nothing.
	if !found || !u.s.rowOK(mac, "sso_links", issuer, ssoLinkFields(subject, id, created)...) {
		return identity.User{}, identityErr(wrapOp("sso linked user", storage.ErrNotFound))
	}
	const q = `SELECT ` + userCols + ` FROM users r WHERE r.id = ?`
	urows, err := u.s.r().query(ctx, q, id)
	return oneUser(u.s, "sso linked user", urows, err)
}

// ssoLinkFields are the MAC'd columns of an sso_links row, whose MAC id
// is the issuer (the primary key is issuer and subject).
func ssoLinkFields(subject, userID string, created int64) [][]byte {
	return [][]byte{macStr(subject), macStr(userID), macInt(created)}
}

// InsertLinkedUser implements account.Tx.
func (t *tx) InsertLinkedUser(ctx context.Context, u identity.User) error {
	const q = `INSERT INTO users (id, username, display_name, fhir_user, roles, disabled, mfa_enrolled, password_hash, created, updated, mac)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	return t.insertOne(ctx, "create sso user", q, u.ID, u.Username, u.DisplayName, u.FHIRUser, identity.FormatRoles(u.Roles),
		u.Disabled, u.MFAEnrolled, u.PasswordHash, u.Created.UnixMicro(), u.Updated.UnixMicro(), t.s.userMAC(u))
}

// LinkSSO implements account.Tx; the link carries its MAC (ADR 0022).
func (t *tx) LinkSSO(ctx context.Context, issuer, subject, userID string, created time.Time) error {
	const q = `INSERT INTO sso_links (issuer, subject, user_id, created, mac) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	mac := t.s.rowMAC("sso_links", issuer, ssoLinkFields(subject, userID, created.UnixMicro())...)
	return t.insertOne(ctx, "link sso identity", q, issuer, subject, userID, created.UnixMicro(), mac)
}

// insertOne runs an INSERT ... ON CONFLICT DO NOTHING and reports a
// skipped row as identity.ErrExists.
func (t *tx) insertOne(ctx context.Context, op, q string, args ...any) error {
	res, err := t.exec(ctx, q, args...)
	if err != nil {
		return identityErr(t.s.translate(op, err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return identityErr(t.s.translate(op, err))
	}
	if n == 0 {
		return identityErr(wrapOp(op, storage.ErrConflict))
	}
	return nil
}
