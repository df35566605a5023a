package login

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/authn/passkey"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// Tx is the part of one write transaction that login's audited changes
// use (the store's unit of work, ADR 0024): a sign-in's [Commit], a TOTP
// enrolment's secret, a session's revocation and the lockout state.
// Every method but AppendAudit and Now is one plain statement (or a
// read with its row check); errors wrap the storage sentinels. op names
// the operation in error text. It is not safe for concurrent use.
type Tx interface {
	// AppendAudit adds audit records in this transaction.
	AppendAudit(ctx context.Context, recs ...storage.AuditRecord) error
	// Now is the store's clock.
	Now() time.Time

	// LockLoginState returns the lockout state of key (the zero state
	// when there is none), with its row locked until commit: concurrent
	// failures of one key serialise. key is 1 to 64 bytes.
	LockLoginState(ctx context.Context, key []byte) (password.AccountState, error)
	// PutLoginState stores st as key's state (the zero state deletes it).
	PutLoginState(ctx context.Context, key []byte, st password.AccountState) error

	// LockUser reads user id with its row locked until commit; an
	// error wrapping storage.ErrNotFound if there is none (or its row
	// does not authenticate).
	LockUser(ctx context.Context, op, id string) (identity.User, error)
	// SetUserAuth writes u's MFA flag and password hash (u read by
	// LockUser in this transaction), updated at updated.
	SetUserAuth(ctx context.Context, op string, u identity.User, updated time.Time) error

	// PutTOTPSecret replaces the user's TOTP secret, last step 0.
	PutTOTPSecret(ctx context.Context, userID string, sealed []byte) error
	// AdvanceTOTPStep moves the user's last step from from to to;
	// storage.ErrConflict if it is not from.
	AdvanceTOTPStep(ctx context.Context, op, userID string, from, to int64) error
	// DeleteTOTP deletes the user's TOTP secret, if any.
	DeleteTOTP(ctx context.Context, op, userID string) error
	// DeleteRecoveryCode deletes one recovery-code hash of the user;
	// storage.ErrConflict if it is gone.
	DeleteRecoveryCode(ctx context.Context, op, userID string, hash []byte) error
	// ReplaceRecoveryCodes replaces the user's recovery codes by hashes.
	ReplaceRecoveryCodes(ctx context.Context, op, userID string, hashes [][]byte) error

	// UseChallenge marks a login challenge used (pruning expired ones);
	// an error wrapping ErrInvalidChallenge and storage.ErrConflict if
	// it was used already.
	UseChallenge(ctx context.Context, u CeremonyUse) error
	// UseCeremony marks a passkey ceremony used; storage.ErrConflict if
	// it was used already.
	UseCeremony(ctx context.Context, u CeremonyUse) error
	// InsertPasskey stores c; storage.ErrConflict if its id is taken or
	// the user has passkey.MaxCredentials.
	InsertPasskey(ctx context.Context, c passkey.Credential) error
	// RenamePasskeyRow renames the user's passkey id; an error wrapping
	// storage.ErrNotFound if the user has no such passkey.
	RenamePasskeyRow(ctx context.Context, op, userID, id, name string) error
	// DeletePasskeyRow deletes the user's passkey id; an error wrapping
	// storage.ErrNotFound if the user has no such passkey.
	DeletePasskeyRow(ctx context.Context, op, userID, id string) error
	// CountPasskeys counts the user's passkeys.
	CountPasskeys(ctx context.Context, userID string) (int, error)
	// HasTOTP reports whether the user has a TOTP secret.
	HasTOTP(ctx context.Context, userID string) (bool, error)
	// RecordPasskeyUse stores a sign-in's counter, backup state and last
	// use; storage.ErrConflict if the stored counter is not
	// u.PrevSignCount or the credential is gone.
	RecordPasskeyUse(ctx context.Context, op, userID string, u passkey.Use) error

	// RevokeUserSessions revokes every live session of the user.
	RevokeUserSessions(ctx context.Context, op, userID string) error
	// RevokeUserSession revokes the user's live session id; an error
	// wrapping storage.ErrNotFound if there is no such session.
	RevokeUserSession(ctx context.Context, op, userID, id string) error
	// InsertSession stores x with the SHA-256 of its token.
	InsertSession(ctx context.Context, op string, x session.Session, tokenHash []byte) error
}

// Updater is the unit of work of login's audited changes: Update runs
// fn in one transaction and commits it if fn returns nil, retrying fn
// after a lost race (fn must have no side effects outside tx); an error
// from fn is returned unchanged. sqldb.NewUnit[login.Tx] implements it.
type Updater interface {
	Update(ctx context.Context, fn func(Tx) error) error
}

// storable reports whether s can be a stored key (as the store checks
// its lookups): 1 to 256 bytes of UTF-8 without NUL.
func storable(s string) bool {
	return s != "" && len(s) <= 256 && utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// ApplyCommit applies c in one transaction (see [Commit]): the state
// changes a successful sign-in earned, its session and its audit
// records, or none of them.
func ApplyCommit(ctx context.Context, st Updater, c Commit) error {
	if !storable(c.UserID) || c.Session.UserID != c.UserID {
		return errors.New("commit login: session and user do not match")
	}
	if len(c.TokenHash) == 0 {
		return errors.New("commit login: empty token hash")
	}
	switch id := c.Session.ID; {
	case id == "":
		return errors.New("commit login: session id is empty")
	case !utf8.ValidString(id) || strings.IndexByte(id, 0) >= 0:
		return errors.New("commit login: session id is not valid UTF-8 without NUL bytes")
	}
	return st.Update(ctx, func(t Tx) error {
		if c.TOTP != nil {
			if err := t.AdvanceTOTPStep(ctx, "commit login: totp step", c.UserID, c.TOTP.From, c.TOTP.To); err != nil {
				return err
			}
		}
		if c.UseRecovery != nil {
			if err := t.DeleteRecoveryCode(ctx, "commit login: recovery code", c.UserID, c.UseRecovery); err != nil {
				return err
			}
		}
		if c.Challenge != nil {
			if err := t.UseChallenge(ctx, *c.Challenge); err != nil {
				return err
			}
		}
		if err := commitPasskey(ctx, t, c); err != nil {
			return err
		}
		if c.Enrol {
			const op = "commit login: enrol"
			now := t.Now().UTC().Truncate(time.Microsecond)
			u, err := t.LockUser(ctx, op, c.UserID)
			if err != nil {
				return err
			}
			if u.MFAEnrolled {
				return fmt.Errorf("%s: %w", op, storage.ErrConflict)
			}
			u.MFAEnrolled = true
			if err := t.SetUserAuth(ctx, op, u, now); err != nil {
				return err
			}
			if err := t.ReplaceRecoveryCodes(ctx, "commit login: recovery codes", c.UserID, c.RecoveryHashes); err != nil {
				return err
			}
		}
		if c.Password != nil {
			const op = "commit login: password"
			if c.Password.To == "" {
				return errors.New("commit login: empty password hash")
			}
			now := t.Now().UTC().Truncate(time.Microsecond)
			u, err := t.LockUser(ctx, op, c.UserID)
			if err != nil {
				return err
			}
			if u.PasswordHash != c.Password.From || u.Disabled {
				return fmt.Errorf("%s: %w", op, storage.ErrConflict)
			}
			u.PasswordHash = c.Password.To
			if err := t.SetUserAuth(ctx, op, u, now); err != nil {
				return err
			}
		}
		if c.RevokeSessions {
			if err := t.RevokeUserSessions(ctx, "commit login", c.UserID); err != nil {
				return err
			}
		}
		if c.LoginKey != nil {
			if err := t.PutLoginState(ctx, c.LoginKey, password.AccountState{}); err != nil {
				return err
			}
		}
		if err := t.InsertSession(ctx, "commit login: session", c.Session, c.TokenHash); err != nil {
			return err
		}
		return t.AppendAudit(ctx, c.Audit...)
	})
}

// commitPasskey applies c's passkey parts: the ceremony's single use, a
// new credential (with Enrol, replacing an unconfirmed TOTP secret) and
// a sign-in's counter.
func commitPasskey(ctx context.Context, t Tx, c Commit) error {
	if c.Ceremony != nil {
		if err := t.UseCeremony(ctx, *c.Ceremony); err != nil {
			return err
		}
	}
	if c.NewPasskey != nil {
		if c.NewPasskey.UserID != c.UserID {
			return errors.New("commit login: passkey of another user")
		}
		if c.Enrol {
			// The passkey is the enrolled factor: an unconfirmed TOTP
			// secret shown earlier must not become a second one.
			if err := t.DeleteTOTP(ctx, "commit login: totp", c.UserID); err != nil {
				return err
			}
		}
		if err := t.InsertPasskey(ctx, *c.NewPasskey); err != nil {
			return err
		}
	}
	if u := c.PasskeyUse; u != nil {
		if err := t.RecordPasskeyUse(ctx, "commit login: passkey use", c.UserID, *u); err != nil {
			return err
		}
	}
	return nil
}

// UpdateLoginState reads the state of key, calls fn with it and, in the
// same transaction, stores the state fn returns and appends its audit
// records; an error from fn aborts the transaction and is returned. fn
// may run more than once (retries); it must not have side effects.
func UpdateLoginState(ctx context.Context, st Updater, key []byte, fn func(password.AccountState) (password.AccountState, []storage.AuditRecord, error)) error {
	return st.Update(ctx, func(t Tx) error {
		cur, err := t.LockLoginState(ctx, key)
		if err != nil {
			return err
		}
		next, recs, err := fn(cur)
		if err != nil {
			return err
		}
		if err := t.PutLoginState(ctx, key, next); err != nil {
			return err
		}
		return t.AppendAudit(ctx, recs...)
	})
}

// PutTOTP replaces the user's TOTP secret (last step 0) and appends rec,
// in one transaction; storage.ErrConflict if the user is already
// enrolled, storage.ErrNotFound for an unknown user.
func PutTOTP(ctx context.Context, st Updater, userID string, sealed []byte, rec storage.AuditRecord) error {
	const op = "put totp"
	if len(sealed) == 0 {
		return errors.New(op + ": empty secret")
	}
	return st.Update(ctx, func(t Tx) error {
		u, err := t.LockUser(ctx, op, userID)
		if err != nil {
			return err
		}
		if u.MFAEnrolled {
			return fmt.Errorf("%s: user already enrolled: %w", op, storage.ErrConflict)
		}
		if err := t.PutTOTPSecret(ctx, userID, sealed); err != nil {
			return err
		}
		return t.AppendAudit(ctx, rec)
	})
}

// RevokeSession revokes session id if it belongs to userID and appends
// rec, in one transaction; an error wrapping storage.ErrNotFound if
// there is no such live session of that user.
func RevokeSession(ctx context.Context, st Updater, userID, id string, rec storage.AuditRecord) error {
	return st.Update(ctx, func(t Tx) error {
		if err := t.RevokeUserSession(ctx, "revoke session", userID, id); err != nil {
			return err
		}
		return t.AppendAudit(ctx, rec)
	})
}

// AddPasskey stores c for an enrolled user, marks the ceremony used and
// appends rec, in one transaction (the change behind
// [Service.FinishPasskeyAdd]): storage.ErrConflict if the credential id
// is taken, the ceremony used, the user not enrolled or at
// passkey.MaxCredentials; storage.ErrNotFound for no such user.
func AddPasskey(ctx context.Context, st Updater, c passkey.Credential, use CeremonyUse, rec storage.AuditRecord) error {
	const op = "add passkey"
	return st.Update(ctx, func(t Tx) error {
		u, err := t.LockUser(ctx, op, c.UserID)
		if err != nil {
			return err
		}
		if !u.MFAEnrolled {
			return fmt.Errorf("%s: user not enrolled: %w", op, storage.ErrConflict)
		}
		if err := t.UseCeremony(ctx, use); err != nil {
			return err
		}
		if err := t.InsertPasskey(ctx, c); err != nil {
			return err
		}
		return t.AppendAudit(ctx, rec)
	})
}

// RenamePasskey renames the user's passkey id and appends rec, in one
// transaction; storage.ErrNotFound if the user has no such passkey.
func RenamePasskey(ctx context.Context, st Updater, userID, id, name string, rec storage.AuditRecord) error {
	return st.Update(ctx, func(t Tx) error {
		if err := t.RenamePasskeyRow(ctx, "rename passkey", userID, id, name); err != nil {
			return err
		}
		return t.AppendAudit(ctx, rec)
	})
}

// DeletePasskey deletes the user's passkey id and appends rec, in one
// transaction; storage.ErrNotFound if the user has no such passkey, and
// an error wrapping ErrLastFactor (and storage.ErrConflict) if it is the
// last second factor (no other passkey, no TOTP) of an enrolled user.
// The user row is locked first, so two concurrent deletions of a user's
// last two passkeys cannot both see one left.
func DeletePasskey(ctx context.Context, st Updater, userID, id string, rec storage.AuditRecord) error {
	const op = "delete passkey"
	return st.Update(ctx, func(t Tx) error {
		u, err := t.LockUser(ctx, op, userID)
		if err != nil {
			return err
		}
		if err := t.DeletePasskeyRow(ctx, op, userID, id); err != nil {
			return err
		}
		if u.MFAEnrolled {
			n, err := t.CountPasskeys(ctx, userID)
			if err != nil {
				return err
			}
			totp, err := t.HasTOTP(ctx, userID)
			if err != nil {
				return err
			}
			if n == 0 && !totp {
				return fmt.Errorf("%s: %w: %w", op, ErrLastFactor, storage.ErrConflict)
			}
		}
		return t.AppendAudit(ctx, rec)
	})
}
