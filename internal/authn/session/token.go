package session

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"strings"
)

// Prefix marks phivault session tokens so secret scanners can find them
// and so they are never confused with API tokens ("pvt_").
const Prefix = "pvs_"

// secretBytes is 256 bits of entropy (NIST SP 800-63B §7.1: session
// secrets at least 64 bits; 256 leaves nothing to brute-force, which is
// what makes a fast unsalted hash the right stored form).
const secretBytes = 32

// secretLen is the exact length of a well-formed token: the prefix and
// 43 base64url characters. Anything else is rejected before hashing, so
// untrusted cookies cost no more than one comparison.
var secretLen = len(Prefix) + base64.RawURLEncoding.EncodedLen(secretBytes)

// csrfDomain separates the CSRF derivation from the stored hash, so the
// CSRF token is not the value in the database (and vice versa).
const csrfDomain = "phivault-csrf\x00"

// Secret is a session token in clear. It is handed to the client once
// (as a cookie) and never stored. It redacts itself in logs, fmt and JSON.
type Secret string

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// String redacts.
func (Secret) String() string { return "[redacted]" }

// GoString redacts (%#v would otherwise print the string).
func (Secret) GoString() string { return "session.Secret([redacted])" }

// MarshalJSON redacts.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// Reveal returns the token, for the Set-Cookie header only.
func (s Secret) Reveal() string { return string(s) }

// wellFormed reports whether s has the shape of a token (prefix, length,
// base64url alphabet) without looking anything up.
func wellFormed(s string) bool {
	if len(s) != secretLen || !strings.HasPrefix(s, Prefix) {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(s[len(Prefix):])
	return err == nil
}

// HashSecret is the stored form of a session token: SHA-256 of the whole
// token string. A fast hash is right for 256-bit random secrets (there
// is no dictionary to try); lookups are by hash, so a database reader
// learns no usable token and timing reveals nothing about stored ones.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// CSRFToken derives the anti-CSRF token for the session whose token is
// secret: base64url(SHA-256("phivault-csrf\x00" || secret)). Pages embed
// it in forms and scripts send it in a header; [CheckCSRF] verifies it.
//
// Why this is sound without a MAC key: the session secret is 256 random
// bits known only to the browser (an HttpOnly, SameSite=Strict cookie)
// and to nobody else, not even the database (which holds SHA-256(secret)
// without the domain prefix). A cross-site attacker can make the browser
// send the cookie but cannot read it, so cannot compute the token; a
// token that leaks (a page, a log) reveals nothing about the secret
// (preimage resistance) and dies with its session. The domain prefix
// keeps the token distinct from the stored hash, so a database dump
// yields no CSRF tokens. Length extension does not apply: only the
// exact digest is ever accepted.
func CSRFToken(secret string) string {
	h := sha256.Sum256([]byte(csrfDomain + secret))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// CheckCSRF reports whether token is the CSRF token of the session whose
// token is secret, in constant time. A malformed secret never matches.
func CheckCSRF(secret, token string) bool {
	if !wellFormed(secret) {
		return false
	}
	want := CSRFToken(secret)
	return subtle.ConstantTimeCompare([]byte(want), []byte(token)) == 1
}
