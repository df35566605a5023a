package identity

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/ident"
)

// Sentinel errors. Stores wrap them (alongside the storage sentinel they
// translate from), so callers test with [errors.Is].
var (
	// ErrNotFound means no user has that id or username. A login handler
	// must not reveal it: it answers exactly as for a wrong password
	// (STYLE rule 25).
	ErrNotFound = errors.New("identity: user not found")

	// ErrExists means the id or username is taken. Admin endpoints
	// answer 409.
	ErrExists = errors.New("identity: user exists")

	// ErrInvalid means a field breaks a rule below. The error is a
	// [*FieldError] naming the field; admin endpoints answer 400 with it.
	ErrInvalid = errors.New("identity: invalid user")
)

// Limits on user fields. Every one bounds input that an administrator
// (or an IdP, later) controls.
const (
	MinUsernameLen    = 3
	MaxUsernameLen    = 64  // fits an e-mail local part plus a short domain
	MaxDisplayNameLen = 128 // runes
	MaxIDLen          = 64  // FHIR ids are at most 64 characters too
	MaxPasswordHash   = 512 // a PHC string of argon2id is about 100 bytes
	MaxRoles          = 16  // there are 10 roles; repeats are rejected anyway
)

// FieldError is an [ErrInvalid] that names the field at fault. Reason
// never quotes the value: a username may be an e-mail address.
type FieldError struct {
	Field  string // "username", "display_name", "fhir_user", "roles", "id", "password_hash"
	Reason string
}

func (e *FieldError) Error() string {
	return "identity: invalid " + e.Field + ": " + e.Reason
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// User is a local account. The zero value is not valid; see [User.Validate].
type User struct {
	ID          string // opaque, assigned at creation ([NewID]); never reused
	Username    string // lower case, unique, 3–64 of [a-z0-9._@-]
	DisplayName string // workforce only: empty for patient accounts
	Roles       []Role
	FHIRUser    string // "Practitioner/<id>", "Patient/<id>" or a proxy's "RelatedPerson/<id>" (SMART fhirUser); may be empty for workforce
	Disabled    bool
	MFAEnrolled bool

	// PasswordHash is the PHC-format hash from the password package;
	// "" means no local password (invited, or SSO only). It is a
	// credential: User.LogValue omits it.
	PasswordHash string

	Created time.Time // UTC, microsecond precision; set by the store
	Updated time.Time // UTC, microsecond precision; set by the store
}

// HasRole reports whether u has role r.
func (u User) HasRole(r Role) bool { return slices.Contains(u.Roles, r) }

// RequiresMFA reports whether u holds any workforce role, which must
// authenticate with a second factor ([Role.Workforce]). An account with
// no role yet that is not bound to a Patient is a workforce account
// awaiting approval: it enrols its second factor meanwhile.
func (u User) RequiresMFA() bool {
	if len(u.Roles) == 0 {
		return !strings.HasPrefix(u.FHIRUser, ident.PatientPrefix) && !strings.HasPrefix(u.FHIRUser, "RelatedPerson/")
	}
	return slices.ContainsFunc(u.Roles, Role.Workforce)
}

// LogValue implements slog.LogValuer: id, username and roles only. The
// password hash and the display name never reach a log.
func (u User) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", u.ID),
		slog.String("username", u.Username),
		slog.String("roles", FormatRoles(u.Roles)),
		slog.Bool("disabled", u.Disabled),
	)
}

// Validate checks every field and the rules between them. It returns a
// [*FieldError] (wrapping [ErrInvalid]) for the first field at fault:
//
//   - ID: 1–64 of [A-Za-z0-9._-];
//   - Username: see [ValidateUsername];
//   - Roles: known, no repeats; patient cannot be combined with any
//     other role (a patient who is also staff has two accounts, so
//     patient access never inherits workforce grants or vice versa). No
//     role at all is valid: an account whose roles await a second
//     administrator's approval has no access (ADR 0018);
//   - a patient account has FHIRUser "Patient/<id>", or
//     "RelatedPerson/<id>" for a proxy (a parent or carer: what it may
//     read is the proxy grant's, see authz/proxy.go), and an empty
//     DisplayName: the patient's name is PHI and lives only in the
//     encrypted Patient resource; an account with no role that
//     references a Patient or RelatedPerson is held to the same rules;
//   - a workforce account's FHIRUser, if set, is "Practitioner/<id>";
//   - DisplayName: at most 128 runes of printable UTF-8;
//   - PasswordHash: at most 512 bytes of printable ASCII.
func (u User) Validate() error {
	if err := validID(u.ID); err != nil {
		return err
	}
	if err := ValidateUsername(u.Username); err != nil {
		return err
	}
	if err := validRoles(u.Roles); err != nil {
		return err
	}
	if err := validDisplayName(u.DisplayName); err != nil {
		return err
	}
	typ, id, hasRef := strings.Cut(u.FHIRUser, "/")
	patient := u.HasRole(RolePatient) || len(u.Roles) == 0 && (typ == "Patient" || typ == "RelatedPerson")
	switch {
	case u.FHIRUser == "" && u.HasRole(RolePatient):
		return &FieldError{Field: "fhir_user", Reason: "a patient account must name its Patient resource"}
	case u.FHIRUser == "":
	case !hasRef || validFHIRID(id) != nil:
		return &FieldError{Field: "fhir_user", Reason: `must be "Practitioner/<id>", "Patient/<id>" or "RelatedPerson/<id>"`}
	case patient && typ != "Patient" && typ != "RelatedPerson":
		return &FieldError{Field: "fhir_user", Reason: "a patient account must reference a Patient (or, for a proxy, a RelatedPerson)"}
	case !patient && typ != "Practitioner":
		return &FieldError{Field: "fhir_user", Reason: "a workforce or system account must reference a Practitioner"}
	}
	if patient && u.DisplayName != "" {
		return &FieldError{Field: "display_name", Reason: "must be empty for a patient account (a patient's name is PHI)"}
	}
	if len(u.PasswordHash) > MaxPasswordHash {
		return &FieldError{Field: "password_hash", Reason: fmt.Sprintf("longer than %d bytes", MaxPasswordHash)}
	}
	for i := 0; i < len(u.PasswordHash); i++ {
		if c := u.PasswordHash[i]; c < 0x21 || c > 0x7e {
			return &FieldError{Field: "password_hash", Reason: "must be printable ASCII"}
		}
	}
	return nil
}

// ValidateUsername checks that name is 3–64 characters of lower-case
// ASCII letters, digits and . _ - @ (so usernames are case-insensitive by
// construction and cannot hold look-alike Unicode). It returns a
// [*FieldError] for "username".
func ValidateUsername(name string) error {
	if len(name) < MinUsernameLen || len(name) > MaxUsernameLen {
		return &FieldError{Field: "username", Reason: fmt.Sprintf("must be %d to %d characters", MinUsernameLen, MaxUsernameLen)}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == '@') {
			return &FieldError{Field: "username", Reason: "may hold only a-z, 0-9, '.', '_', '-' and '@'"}
		}
	}
	return nil
}

func validID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return &FieldError{Field: "id", Reason: fmt.Sprintf("must be 1 to %d characters", MaxIDLen)}
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return &FieldError{Field: "id", Reason: "may hold only A-Z, a-z, 0-9, '.', '_' and '-'"}
		}
	}
	return nil
}

// validFHIRID checks the FHIR R4 id syntax [A-Za-z0-9\-\.]{1,64}.
func validFHIRID(id string) error {
	if id == "" || len(id) > 64 {
		return errors.New("bad length")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return errors.New("bad character")
		}
	}
	return nil
}

func validRoles(roles []Role) error {
	if len(roles) > MaxRoles {
		return &FieldError{Field: "roles", Reason: fmt.Sprintf("more than %d roles", MaxRoles)}
	}
	for i, r := range roles {
		if _, err := ParseRole(string(r)); err != nil {
			return err
		}
		if slices.Contains(roles[:i], r) {
			return &FieldError{Field: "roles", Reason: "a role is repeated"}
		}
	}
	if slices.Contains(roles, RolePatient) && len(roles) > 1 {
		return &FieldError{Field: "roles", Reason: "patient cannot be combined with another role"}
	}
	return nil
}

func validDisplayName(s string) error {
	if !utf8.ValidString(s) {
		return &FieldError{Field: "display_name", Reason: "must be valid UTF-8"}
	}
	if utf8.RuneCountInString(s) > MaxDisplayNameLen {
		return &FieldError{Field: "display_name", Reason: fmt.Sprintf("longer than %d characters", MaxDisplayNameLen)}
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return &FieldError{Field: "display_name", Reason: "must be printable (no control characters)"}
		}
	}
	return nil
}

// idBytes is 128 bits: ids are not secrets, only unique and unguessable
// enough that enumerating them tells nothing about account creation order.
const idBytes = 16

// NewID returns a fresh user id "usr_<32 hex digits>" read from r
// (crypto/rand.Reader when nil).
func NewID(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [idBytes]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("generating user id: %w", err)
	}
	return "usr_" + hex.EncodeToString(b[:]), nil
}
