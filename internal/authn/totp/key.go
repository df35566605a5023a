package totp

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"
)

const (
	// SecretBytes is the secret length: 160 bits, the length RFC 4226 §4
	// (R6) recommends and the HMAC-SHA1 block-friendly size every
	// authenticator app accepts.
	SecretBytes = 20

	// minSecretBytes is the shortest stored secret [Code] and [Verify]
	// accept: RFC 4226 §4 (R6) makes 128 bits the minimum.
	minSecretBytes = 16

	// maxNameLen caps the issuer and account name (bytes each) so the
	// URI, and so the QR code, stays small enough to scan (rule 24).
	maxNameLen = 64
)

// Key is a freshly generated TOTP secret with its enrolment URI. It is
// opaque: it redacts itself when printed, logged or marshalled. The zero
// Key is not valid. A Key is immutable and safe for concurrent use.
type Key struct {
	secret  string // base32, no padding
	uri     string // otpauth://totp/...
	issuer  string
	account string
}

// NewSecret returns a new 160-bit SHA1/6-digit/30-second TOTP key from
// crypto/rand for account at issuer. See [NewSecretFrom].
func NewSecret(issuer, account string) (Key, error) {
	return NewSecretFrom(rand.Reader, issuer, account)
}

// NewSecretFrom is [NewSecret] reading its [SecretBytes] random bytes
// from r (tests and the reproducible demo inject a reader). It returns
// an error wrapping [ErrInvalidAccount] for an empty, longer than 64 bytes,
// colon-containing or control-character-containing issuer or account, or
// the reader's error.
func NewSecretFrom(r io.Reader, issuer, account string) (Key, error) {
	if err := checkName(issuer); err != nil {
		return Key{}, fmt.Errorf("creating totp secret: issuer: %w", err)
	}
	if err := checkName(account); err != nil {
		return Key{}, fmt.Errorf("creating totp secret: account: %w", err)
	}
	raw := make([]byte, SecretBytes)
	if _, err := io.ReadFull(r, raw); err != nil {
		return Key{}, fmt.Errorf("creating totp secret: reading randomness: %w", err)
	}
	k, err := pqtotp.Generate(pqtotp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      period,
		Secret:      raw,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		// Only reachable for names checkName already refuses; the
		// library's errors carry no secret.
		return Key{}, fmt.Errorf("creating totp secret: %w", err)
	}
	return Key{secret: k.Secret(), uri: k.URL(), issuer: issuer, account: account}, nil
}

func checkName(s string) error {
	switch {
	case s == "", len(s) > maxNameLen:
		return ErrInvalidAccount
	case strings.ContainsRune(s, ':'):
		// Key URI format: the label is "issuer:account"; a colon in
		// either part makes it ambiguous.
		return ErrInvalidAccount
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return ErrInvalidAccount
	}
	return nil
}

// Secret reveals the base32 secret (RFC 4648, no padding), for storage
// and for users who type it into an app by hand.
func (k Key) Secret() string { return k.secret }

// URI reveals the otpauth://totp/ enrolment URI, which contains the secret
// (Google Authenticator Key Uri Format).
func (k Key) URI() string { return k.uri }

// Issuer returns the issuer the key was created for (not secret).
func (k Key) Issuer() string { return k.issuer }

// Account returns the account name the key was created for (not secret).
func (k Key) Account() string { return k.account }

// String redacts the secret.
func (k Key) String() string { return "totp.Key([redacted])" }

// GoString redacts the secret under %#v.
func (k Key) GoString() string { return "totp.Key([redacted])" }

// LogValue redacts the secret in log/slog output.
func (k Key) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// MarshalJSON redacts the secret.
func (k Key) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

var _ slog.LogValuer = Key{}
