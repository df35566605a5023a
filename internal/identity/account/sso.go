package account

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/identity"
)

// storable reports whether s can be a stored key (as the store checks
// its lookups): 1 to 256 bytes of UTF-8 without NUL.
func storable(s string) bool {
	return s != "" && len(s) <= 256 && utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// CreateLinked stores nu, links it to the enterprise SSO identity
// (issuer, subject) and appends the audit record from audit, in one
// transaction (an account provisioned at its first SSO sign-in).
// Errors: identity.ErrInvalid (a *identity.FieldError) for an invalid
// user or identity; identity.ErrExists when the id or username is taken
// or the identity is already linked (a concurrent first login): the
// caller looks the link up again, then tries another username.
func CreateLinked(ctx context.Context, st Store, nu identity.User, issuer, subject string, audit AuditFn) (identity.User, error) {
	if audit == nil {
		return identity.User{}, errors.New("create sso user: no audit record")
	}
	if !storable(issuer) || !storable(subject) {
		return identity.User{}, &identity.FieldError{Field: "sso_link", Reason: "issuer and subject must be 1 to 256 bytes of UTF-8"}
	}
	nu.Roles = append([]identity.Role(nil), nu.Roles...)
	var out identity.User
	err := st.Update(ctx, func(t Tx) error {
		u := nu
		now := t.Now().UTC().Truncate(time.Microsecond)
		u.Created, u.Updated = now, now
		if err := u.Validate(); err != nil {
			return err
		}
		if err := t.InsertLinkedUser(ctx, u); err != nil {
			return err
		}
		if err := t.LinkSSO(ctx, issuer, subject, u.ID, now); err != nil {
			return err
		}
		rec, err := audit(u)
		if err != nil {
			return err
		}
		out = u
		return t.AppendAudit(ctx, rec)
	})
	if err != nil {
		return identity.User{}, err
	}
	return out, nil
}
