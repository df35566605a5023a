package sqldb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// This file holds the audited account changes of the security-admin
// surface (app.Accounts): each one writes the users row, its side
// effects (enrolment secret, second factors, sessions) and its audit
// record in ONE transaction, so a change is never committed without its
// audit event, and a disabled user or reset MFA never leaves a live
// session behind.

// Enrolment is an enrolment secret to store: the SHA-256 of the secret
// (the secret itself is shown once and never stored) and its expiry.
type Enrolment struct {
	Hash     []byte
	HashKind string // storage.HashHMAC (required with row authentication)
	Expires  time.Time
}

// AuditFn builds the audit record of a change from the user as stored
// after it. It runs inside the transaction and may run more than once
// (Update retries), so it must have no side effects.
type AuditFn func(identity.User) (storage.AuditRecord, error)

// AccountChange is one audited change of an existing account. Every
// field but Op and Audit is optional; all of it commits or none does.
type AccountChange struct {
	Op     string               // operation name for errors: "disable user"
	Change func(*identity.User) // edits the user; the result is validated

	// ConsumeEnrolment is the hash of an enrolment secret that must be
	// the user's outstanding one and unexpired at EnrolmentNow (the
	// caller's clock; zero means the store's); it is deleted. Otherwise
	// Apply fails with identity.ErrNotFound and writes nothing.
	ConsumeEnrolment []byte
	EnrolmentKind    string // the kind of ConsumeEnrolment's hash (storage.HashHMAC, ...)
	EnrolmentNow     time.Time

	ClearMFA       bool // delete the user's TOTP, recovery-code and WebAuthn rows
	RevokeSessions bool // revoke every live session of the user
	// RevokeIfRolesChanged revokes every live session of the user if
	// Change changed its roles (a role change that is only requested
	// leaves the sessions alone).
	RevokeIfRolesChanged bool

	// Request, if not nil, is called with the account after Change and
	// returns the role request for the rest of a role change (ADR 0018),
	// or nil; it is stored with its alert and audit record (see
	// [Users.RequestRoles]). Like Change it may run more than once.
	Request func(identity.User) *Pending
	// Alert, if not nil, is raised with the change (a grant outside the
	// two-person rule, by the offline CLI).
	Alert *authz.Alert

	Audit AuditFn // required
}

// Create is what [Users.CreateAudited] stores with a new account: the
// enrolment secret, a role request (the roles that await a second
// administrator) and an alert, each optional.
type Create struct {
	Enrolment *Enrolment
	Request   *Pending
	Alert     *authz.Alert
}

// CreateAudited stores nu (as [Users.Create]), what c holds, and the
// audit record from audit, in one transaction. Errors are those of
// Create (identity.ErrFHIRUserBound included) and of RequestRoles; a
// taken enrolment hash is ErrExists too (a 256-bit collision: not
// expected to happen).
func (u *Users) CreateAudited(ctx context.Context, nu identity.User, c Create, audit AuditFn) (identity.User, error) {
	if audit == nil {
		return identity.User{}, errors.New("create user: no audit record")
	}
	now := u.s.now().UTC().Truncate(time.Microsecond)
	nu.Created, nu.Updated = now, now
	nu.Roles = append([]identity.Role(nil), nu.Roles...)
	if err := nu.Validate(); err != nil {
		return identity.User{}, err
	}
	err := u.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		if err := t.insertUser(ctx, nu, now); err != nil {
			return err
		}
		if c.Enrolment != nil {
			if err := t.putEnrolment(ctx, nu.ID, *c.Enrolment, now); err != nil {
				return err
			}
		}
		rec, err := audit(nu)
		if err != nil {
			return err
		}
		if err := t.AppendAudit(ctx, rec); err != nil {
			return err
		}
		if c.Request != nil {
			if _, err := t.putRequest(ctx, nu, *c.Request); err != nil {
				return err
			}
		}
		if c.Alert != nil {
			return t.putAlert(ctx, *c.Alert)
		}
		return nil
	})
	if err != nil {
		return identity.User{}, err
	}
	return nu, nil
}

// Apply performs c on user id in one transaction (reading the user with
// its row locked on PostgreSQL) and returns the user as stored after it.
// Errors: identity.ErrNotFound for an unknown id or, with
// ConsumeEnrolment, for a secret that is not the user's, has expired or
// was used; identity.ErrInvalid if the change makes the user invalid.
func (u *Users) Apply(ctx context.Context, id string, c AccountChange) (identity.User, error) {
	if c.Audit == nil {
		return identity.User{}, errors.New(c.Op + ": no audit record")
	}
	if !lookupable(id) {
		return identity.User{}, identityErr(wrapOp(c.Op, storage.ErrNotFound))
	}
	var out identity.User
	err := u.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		q := `SELECT ` + userCols + ` FROM users r WHERE r.id = ?` + t.s.d.LockRows
		rows, err := t.query(ctx, q, id)
		cur, err := oneUser(t.s, c.Op, rows, err)
		if err != nil {
			return err
		}
		now := t.s.now().UTC().Truncate(time.Microsecond)
		if c.ConsumeEnrolment != nil {
			// The row must verify here too, not only at EnrolmentUser.
			owner, _, err := enrolmentRow(ctx, t.s, t, c.ConsumeEnrolment, c.EnrolmentKind)
			if err != nil || owner != id {
				return identityErr(errors.Join(wrapOp(c.Op+": enrolment secret", storage.ErrNotFound), err))
			}
			const qd = `DELETE FROM enrolment_secrets WHERE user_id = ? AND hash = ? AND expires > ?`
			at := c.EnrolmentNow
			if at.IsZero() {
				at = now
			}
			res, err := t.exec(ctx, qd, id, c.ConsumeEnrolment, at.UnixMicro())
			if err != nil {
				return identityErr(t.s.translate(c.Op, err))
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return identityErr(errors.Join(wrapOp(c.Op+": enrolment secret", storage.ErrNotFound), err))
			}
		}
		was := cur
		if c.Change != nil {
			c.Change(&cur)
			if err := cur.Validate(); err != nil {
				return err
			}
			cur.Updated = now
			if err := t.updateUser(ctx, c.Op, was, cur); err != nil {
				return err
			}
		}
		if c.ClearMFA {
			for _, qm := range []string{
				`DELETE FROM totp_credentials WHERE user_id = ?`,
				`DELETE FROM recovery_codes WHERE user_id = ?`,
				`DELETE FROM webauthn_credentials WHERE user_id = ?`,
			} {
				if _, err := t.exec(ctx, qm, id); err != nil {
					return t.s.translate(c.Op+": clearing second factors", err)
				}
			}
		}
		if c.RevokeSessions || c.RevokeIfRolesChanged && identity.FormatRoles(was.Roles) != identity.FormatRoles(cur.Roles) {
			const qs = `UPDATE sessions SET revoked = ?, mac = NULL WHERE user_id = ? AND NOT revoked`
			if _, err := t.exec(ctx, qs, true, id); err != nil {
				return t.s.translate(c.Op+": revoking sessions", err)
			}
		}
		rec, err := c.Audit(cur)
		if err != nil {
			return err
		}
		if err := t.AppendAudit(ctx, rec); err != nil {
			return err
		}
		if c.Request != nil {
			if p := c.Request(cur); p != nil {
				if _, err := t.putRequest(ctx, cur, *p); err != nil {
					return err
				}
			}
		}
		if c.Alert != nil {
			if err := t.putAlert(ctx, *c.Alert); err != nil {
				return err
			}
		}
		out = cur
		return nil
	})
	return out, err
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

// putEnrolment replaces user id's outstanding enrolment secret. With row
// authentication the hash must be keyed (storage.HashHMAC).
func (t *tx) putEnrolment(ctx context.Context, id string, e Enrolment, now time.Time) error {
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
