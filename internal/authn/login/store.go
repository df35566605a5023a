package login

import (
	"context"
	"time"

	"github.com/phivault/phivault/internal/authn/passkey"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/storage"
)

// TOTPCredential is a user's stored TOTP secret, sealed by the keyring,
// and the highest RFC 6238 step accepted so far (0 before first use).
type TOTPCredential struct {
	Sealed   []byte
	LastStep int64
}

// StepChange is a compare-and-set of a TOTP credential's last step.
type StepChange struct {
	From, To int64
}

// PasswordChange is a compare-and-set of a user's PHC password hash.
type PasswordChange struct {
	From, To string
}

// Commit is everything one successful second factor (or a password-only
// login) changes, applied in one transaction by [ApplyCommit]. Zero
// fields change nothing.
type Commit struct {
	UserID string
	// LoginKey names the lockout row to reset (the login succeeded).
	LoginKey []byte
	// TOTP moves the user's last step from From to To; the commit fails
	// with storage.ErrConflict if the stored step is not From (another
	// request used a code meanwhile).
	TOTP *StepChange
	// UseRecovery deletes this recovery-code hash of the user; the commit
	// fails with storage.ErrConflict if it is gone (used meanwhile).
	UseRecovery []byte
	// Enrol marks the user MFA-enrolled and replaces the recovery codes
	// with RecoveryHashes; the commit fails with storage.ErrConflict if
	// the user is enrolled already.
	Enrol          bool
	RecoveryHashes [][]byte
	// Ceremony marks a passkey ceremony used; the commit fails with
	// storage.ErrConflict if it was used already (a replay).
	Ceremony *CeremonyUse
	// Challenge marks the login challenge that this session completes
	// used; the commit fails with an error wrapping ErrInvalidChallenge
	// (and storage.ErrConflict) if it was used already: a challenge
	// starts at most one session, on any process of a fleet.
	Challenge *CeremonyUse
	// NewPasskey stores a credential of UserID; storage.ErrConflict if
	// its credential id is registered already (to anyone) or the user
	// has passkey.MaxCredentials. With Enrol, any unconfirmed TOTP
	// secret of the user is deleted: the passkey is the enrolled factor.
	NewPasskey *passkey.Credential
	// PasskeyUse stores a sign-in's counter, backup state and last use;
	// the commit fails with storage.ErrConflict if the stored counter is
	// not Use.PrevSignCount (a concurrent sign-in with the same
	// credential) or the credential is gone.
	PasskeyUse *passkey.Use
	// Password replaces the user's password hash (a self-service
	// change); the commit fails with storage.ErrConflict if the stored
	// hash is not From or the account is disabled.
	Password *PasswordChange
	// RevokeSessions revokes every live session of the user before
	// Session is stored, so Session is the only one left.
	RevokeSessions bool
	// Session is stored with the SHA-256 of its token.
	Session   session.Session
	TokenHash []byte
	Audit     []storage.AuditRecord
}

// CeremonyUse is a single-use marker: for a finished passkey ceremony,
// the keyed hash of [passkey.Ceremony.UseKey], for a login challenge the
// keyed hash of its nonce; and its expiry (after which the row may be
// pruned: the sealed ceremony or challenge no longer opens).
type CeremonyUse struct {
	Key     []byte
	Expires time.Time
}

// PasskeyStore is the database side of passkey management. The SQL
// implementation is sqldb.Store.Logins(). Implementations are safe for
// concurrent use and return errors wrapping the storage sentinels.
type PasskeyStore interface {
	// Passkeys returns the user's credentials, oldest first.
	Passkeys(ctx context.Context, userID string) ([]passkey.Credential, error)
}

// Store is the read side of login; its audited changes run on the
// store's unit of work ([Updater], [Tx]). The SQL implementation is
// sqldb.Store.Logins(). Implementations are safe for concurrent use and
// return errors wrapping the storage sentinels.
type Store interface {
	// LoginState returns the lockout state of key (the zero state when
	// there is no row).
	LoginState(ctx context.Context, key []byte) (password.AccountState, error)
	// TOTP returns the user's TOTP credential, or an error wrapping
	// storage.ErrNotFound.
	TOTP(ctx context.Context, userID string) (TOTPCredential, error)
	// RecoveryHashes returns the user's unused recovery-code hashes.
	RecoveryHashes(ctx context.Context, userID string) ([][]byte, error)
}
