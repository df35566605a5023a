package sqldb

import (
	"context"
	"errors"
	"time"

	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// This file holds the links of enterprise SSO identities (issuer,
// subject) to accounts (table sso_links, migration 0007). Like
// accounts.go, every change commits with its audit record.

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

// CreateLinked stores nu (as [Users.Create]), links it to (issuer,
// subject) and appends the audit record from audit, in one transaction.
// Errors: identity.ErrInvalid (a *FieldError) for an invalid user;
// identity.ErrExists when the id or username is taken or the identity
// is already linked (a concurrent first login): the caller looks the
// link up again, then tries another username.
func (u *Users) CreateLinked(ctx context.Context, nu identity.User, issuer, subject string, audit func(identity.User) (storage.AuditRecord, error)) (identity.User, error) {
	if audit == nil {
		return identity.User{}, errors.New("create sso user: no audit record")
	}
	if !lookupable(issuer) || !lookupable(subject) {
		return identity.User{}, &identity.FieldError{Field: "sso_link", Reason: "issuer and subject must be 1 to 256 bytes of UTF-8"}
	}
	now := u.s.now().UTC().Truncate(time.Microsecond)
	nu.Created, nu.Updated = now, now
	nu.Roles = append([]identity.Role(nil), nu.Roles...)
	if err := nu.Validate(); err != nil {
		return identity.User{}, err
	}
	err := u.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		const q = `INSERT INTO users (id, username, display_name, fhir_user, roles, disabled, mfa_enrolled, password_hash, created, updated, mac)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
		if err := t.insertOne(ctx, "create sso user", q, nu.ID, nu.Username, nu.DisplayName, nu.FHIRUser, identity.FormatRoles(nu.Roles),
			nu.Disabled, nu.MFAEnrolled, nu.PasswordHash, now.UnixMicro(), now.UnixMicro(), t.s.userMAC(nu)); err != nil {
			return err
		}
		const ql = `INSERT INTO sso_links (issuer, subject, user_id, created, mac) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
		lmac := t.s.rowMAC("sso_links", issuer, ssoLinkFields(subject, nu.ID, now.UnixMicro())...)
		if err := t.insertOne(ctx, "link sso identity", ql, issuer, subject, nu.ID, now.UnixMicro(), lmac); err != nil {
			return err
		}
		rec, err := audit(nu)
		if err != nil {
			return err
		}
		return t.AppendAudit(ctx, rec)
	})
	if err != nil {
		return identity.User{}, err
	}
	return nu, nil
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
