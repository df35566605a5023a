package sso

import (
	"strings"

	"github.com/phivault/phivault/internal/identity"
)

// fallbackUsername is the username base when the IdP gives neither a
// usable preferred_username nor an e-mail address.
const fallbackUsername = "sso-user"

// maxSuffix is the room kept for "-<suffix>" (up to 8 hex digits).
const maxSuffix = 9

// usernameBase derives the username of a new account from the IdP's
// preferred_username, else its e-mail (both untrusted, neither unique):
// lower case; characters outside [a-z0-9._@-] become '-', runs of them
// collapse; leading and trailing punctuation goes; at most
// identity.MaxUsernameLen-maxSuffix bytes. A result shorter than
// identity.MinUsernameLen is replaced by [fallbackUsername].
func usernameBase(preferred, email string) string {
	for _, src := range []string{preferred, email} {
		if b := sanitise(src); len(b) >= identity.MinUsernameLen {
			return b
		}
	}
	return fallbackUsername
}

func sanitise(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	dash := false
	for _, r := range s {
		if b.Len() >= identity.MaxUsernameLen-maxSuffix {
			break
		}
		ok := 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '.' || r == '_' || r == '@' || r == '-'
		if !ok || r == '-' {
			if !dash {
				b.WriteByte('-')
			}
			dash = true
			continue
		}
		dash = false
		b.WriteRune(r)
	}
	return strings.Trim(b.String(), "-._@")
}

// withSuffix appends "-suffix" to base.
func withSuffix(base, suffix string) string { return base + "-" + suffix }
