package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

var (
	_ identity.Directory   = (*Users)(nil)
	_ identity.Admin       = (*Users)(nil)
	_ identity.Credentials = (*Users)(nil)
)

// Users implements the identity store capabilities on the users table.
// It is safe for concurrent use. Narrow it to the interface a caller
// needs (identity.Directory for login) before handing it out.
type Users struct{ s *Store }

// Users returns the identity store over this database.
func (s *Store) Users() *Users { return &Users{s: s} }

// kindError adds a domain sentinel (identity's or session's) to an error
// that already wraps a storage sentinel, so callers of either layer can
// use errors.Is.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// identityErr maps storage sentinels to identity's.
func identityErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound):
		return &kindError{kind: identity.ErrNotFound, err: err}
	case errors.Is(err, storage.ErrConflict):
		return &kindError{kind: identity.ErrExists, err: err}
	}
	return err
}

// lookupable reports whether s can be a stored key at all; other values
// are answered "not found" without a query (PostgreSQL text cannot hold
// NUL, and an unbounded key is work driven by input).
func lookupable(s string) bool {
	return s != "" && len(s) <= 256 && utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

const userCols = `r.id, r.username, r.display_name, r.fhir_user, r.roles, r.disabled, r.mfa_enrolled, r.password_hash, r.created, r.updated, r.mac`

// userFields are the MAC'd columns of a users row (ADR 0022), in order:
// everything that decides who the account is and what it may do.
func userFields(username, fhirUser, roles string, disabled, mfaEnrolled bool, passwordHash string) [][]byte {
	return [][]byte{macStr(username), macStr(fhirUser), macStr(roles), macBool(disabled), macBool(mfaEnrolled), macStr(passwordHash)}
}

// userMAC is the MAC to store with u (nil without row authentication).
func (s *Store) userMAC(u identity.User) []byte {
	return s.rowMAC("users", u.ID, userFields(u.Username, u.FHIRUser, identity.FormatRoles(u.Roles), u.Disabled, u.MFAEnrolled, u.PasswordHash)...)
}

// scanUsers reads users rows. A row whose MAC does not verify (row
// authentication on) is left out, with an integrity alarm: to every
// caller the account does not exist.
func scanUsers(s *Store, rows *sql.Rows) ([]identity.User, error) {
	defer rows.Close()
	var out []identity.User
	for rows.Next() {
		var u identity.User
		var roles string
		var created, updated int64
		var mac []byte
		if err := rows.Scan(&u.ID, &u.Username, &u.DisplayName, &u.FHIRUser, &roles, &u.Disabled, &u.MFAEnrolled, &u.PasswordHash, &created, &updated, &mac); err != nil {
			return nil, err
		}
		if !s.rowOK(mac, "users", u.ID, userFields(u.Username, u.FHIRUser, roles, u.Disabled, u.MFAEnrolled, u.PasswordHash)...) {
			continue
		}
		rs, err := identity.ParseRoles(roles)
		if err != nil {
			// A role this binary does not know (a newer binary wrote it):
			// refuse rather than drop it silently.
			return nil, errors.New("stored user has an unknown role")
		}
		u.Roles = rs
		u.Created, u.Updated = fromMicros(created), fromMicros(updated)
		out = append(out, u)
	}
	return out, rows.Err()
}

func oneUser(s *Store, op string, rows *sql.Rows, err error) (identity.User, error) {
	if err != nil {
		return identity.User{}, identityErr(s.translate(op, err))
	}
	us, err := scanUsers(s, rows)
	if err != nil {
		return identity.User{}, identityErr(s.translate(op, err))
	}
	if len(us) == 0 {
		return identity.User{}, identityErr(wrapOp(op, storage.ErrNotFound))
	}
	return us[0], nil
}

// ByID implements identity.Directory.
func (u *Users) ByID(ctx context.Context, id string) (identity.User, error) {
	if !lookupable(id) {
		return identity.User{}, identityErr(wrapOp("user by id", storage.ErrNotFound))
	}
	const q = `SELECT ` + userCols + ` FROM users r WHERE r.id = ?`
	rows, err := u.s.r().query(ctx, q, id)
	return oneUser(u.s, "user by id", rows, err)
}

// ByUsername implements identity.Directory.
func (u *Users) ByUsername(ctx context.Context, username string) (identity.User, error) {
	if identity.ValidateUsername(username) != nil {
		// No stored user can have this name.
		return identity.User{}, identityErr(wrapOp("user by username", storage.ErrNotFound))
	}
	const q = `SELECT ` + userCols + ` FROM users r WHERE r.username = ?`
	rows, err := u.s.r().query(ctx, q, username)
	return oneUser(u.s, "user by username", rows, err)
}

// List implements identity.Directory.
func (u *Users) List(ctx context.Context, after string, limit int) ([]identity.User, error) {
	if limit < 1 || limit > identity.MaxPage {
		return nil, &identity.FieldError{Field: "limit", Reason: "must be 1 to 500"}
	}
	if after != "" && !lookupable(after) {
		return nil, &identity.FieldError{Field: "after", Reason: "is not a username"}
	}
	const q = `SELECT ` + userCols + ` FROM users r WHERE r.username > ? ORDER BY r.username LIMIT ?`
	rows, err := u.s.r().query(ctx, q, after, int64(limit))
	if err != nil {
		return nil, identityErr(u.s.translate("list users", err))
	}
	us, err := scanUsers(u.s, rows)
	return us, identityErr(u.s.translate("list users", err))
}

// Create implements identity.Admin.
func (u *Users) Create(ctx context.Context, nu identity.User) (identity.User, error) {
	now := u.s.now().UTC().Truncate(time.Microsecond)
	nu.Created, nu.Updated = now, now
	nu.Roles = append([]identity.Role(nil), nu.Roles...)
	if err := nu.Validate(); err != nil {
		return identity.User{}, err
	}
	err := u.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		return t.insertUser(ctx, nu, now)
	})
	if err != nil {
		return identity.User{}, err
	}
	return nu, nil
}

// SetRoles implements identity.Admin.
func (u *Users) SetRoles(ctx context.Context, id string, roles []identity.Role) (identity.User, error) {
	roles = append([]identity.Role(nil), roles...)
	return u.modify(ctx, "set roles", id, func(x *identity.User) { x.Roles = roles })
}

// SetDisabled implements identity.Admin.
func (u *Users) SetDisabled(ctx context.Context, id string, disabled bool) (identity.User, error) {
	return u.modify(ctx, "set disabled", id, func(x *identity.User) { x.Disabled = disabled })
}

// SetPassword implements identity.Credentials.
func (u *Users) SetPassword(ctx context.Context, id string, hash string) (identity.User, error) {
	return u.modify(ctx, "set password", id, func(x *identity.User) { x.PasswordHash = hash })
}

// SetMFA implements identity.Credentials.
func (u *Users) SetMFA(ctx context.Context, id string, enrolled bool) (identity.User, error) {
	return u.modify(ctx, "set mfa", id, func(x *identity.User) { x.MFAEnrolled = enrolled })
}

// modify reads user id (locking its row on PostgreSQL), applies change,
// validates the result and writes it, in one transaction.
func (u *Users) modify(ctx context.Context, op, id string, change func(*identity.User)) (identity.User, error) {
	if !lookupable(id) {
		return identity.User{}, identityErr(wrapOp(op, storage.ErrNotFound))
	}
	var out identity.User
	err := u.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		q := `SELECT ` + userCols + ` FROM users r WHERE r.id = ?` + t.s.d.LockRows
		rows, err := t.query(ctx, q, id)
		cur, err := oneUser(t.s, op, rows, err)
		if err != nil {
			return err
		}
		was := cur
		change(&cur)
		if err := cur.Validate(); err != nil {
			return err
		}
		cur.Updated = t.s.now().UTC().Truncate(time.Microsecond)
		if err := t.updateUser(ctx, op, was, cur); err != nil {
			return err
		}
		out = cur
		return nil
	})
	return out, err
}

// updateUser writes cur over was (the same account, read in this
// transaction). An enabled account bound to a FHIR user that another
// enabled account is bound to is identity.ErrFHIRUserBound: checked
// first for a clear answer, and enforced by the unique index
// users_fhir_user_enabled for two transactions racing on a fleet.
func (t *tx) updateUser(ctx context.Context, op string, was, cur identity.User) error {
	binds := cur.FHIRUser != "" && !cur.Disabled && (was.Disabled || was.FHIRUser != cur.FHIRUser)
	if binds {
		if err := t.fhirUserFree(ctx, op, cur); err != nil {
			return err
		}
	}
	const qu = `UPDATE users SET display_name = ?, fhir_user = ?, roles = ?, disabled = ?, mfa_enrolled = ?, password_hash = ?, updated = ?, mac = ? WHERE id = ?`
	if _, err := t.exec(ctx, qu, cur.DisplayName, cur.FHIRUser, identity.FormatRoles(cur.Roles), cur.Disabled, cur.MFAEnrolled, cur.PasswordHash, cur.Updated.UnixMicro(), t.s.userMAC(cur), cur.ID); err != nil {
		err = t.s.translate(op, err)
		if binds && errors.Is(err, storage.ErrConflict) {
			return fhirUserBound(op)
		}
		return identityErr(err)
	}
	return nil
}

// fhirUserFree returns identity.ErrFHIRUserBound if an enabled account
// other than u is bound to u.FHIRUser.
func (t *tx) fhirUserFree(ctx context.Context, op string, u identity.User) error {
	rows, err := t.query(ctx, `SELECT id FROM users WHERE fhir_user = ? AND disabled = ? AND id <> ? LIMIT 1`, u.FHIRUser, false, u.ID)
	if err != nil {
		return identityErr(t.s.translate(op, err))
	}
	defer rows.Close()
	taken := rows.Next()
	if err := rows.Err(); err != nil {
		return identityErr(t.s.translate(op, err))
	}
	if taken {
		return fhirUserBound(op)
	}
	return nil
}

// fhirUserBound is the error of a second enabled binding of a FHIR
// user: identity.ErrFHIRUserBound over storage.ErrConflict (never
// identity.ErrExists, which means a taken username).
func fhirUserBound(op string) error {
	return &kindError{kind: identity.ErrFHIRUserBound, err: wrapOp(op, storage.ErrConflict)}
}

// insertUser inserts nu; a taken id or username is ErrExists, a FHIR
// user bound to another enabled account ErrFHIRUserBound.
func (t *tx) insertUser(ctx context.Context, nu identity.User, now time.Time) error {
	const op = "create user"
	binds := nu.FHIRUser != "" && !nu.Disabled
	if binds {
		if err := t.fhirUserFree(ctx, op, nu); err != nil {
			return err
		}
	}
	const q = `INSERT INTO users (id, username, display_name, fhir_user, roles, disabled, mfa_enrolled, password_hash, created, updated, mac)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	res, err := t.exec(ctx, q, nu.ID, nu.Username, nu.DisplayName, nu.FHIRUser, identity.FormatRoles(nu.Roles),
		nu.Disabled, nu.MFAEnrolled, nu.PasswordHash, now.UnixMicro(), now.UnixMicro(), t.s.userMAC(nu))
	if err != nil {
		return identityErr(t.s.translate(op, err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return identityErr(t.s.translate(op, err))
	}
	if n > 0 {
		return nil
	}
	// Which unique constraint held? A concurrent transaction may have
	// bound the FHIR user after the check above (it committed first: on
	// PostgreSQL this statement sees it).
	if binds {
		rows, err := t.query(ctx, `SELECT 1 FROM users WHERE id = ? OR username = ?`, nu.ID, nu.Username)
		if err != nil {
			return identityErr(t.s.translate(op, err))
		}
		taken := rows.Next()
		err = rows.Err()
		rows.Close()
		if err != nil {
			return identityErr(t.s.translate(op, err))
		}
		if !taken {
			return fhirUserBound(op)
		}
	}
	return identityErr(wrapOp(op, storage.ErrConflict))
}
