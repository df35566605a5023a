package oidc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/phivault/phivault/internal/identity"
)

// Identity is what a verified ID token says about the user. It holds no
// token: phivault keeps none of the IdP's tokens after [RP.Exchange].
//
// Link it to a phivault account by (Issuer, Subject), the only stable
// and unique pair (OIDC Core §5.7). Never by Email: an IdP may let users
// choose or change it, and EmailVerified is only the IdP's word.
type Identity struct {
	Issuer        string
	Subject       string
	Email         string // may be empty
	EmailVerified bool
	Username      string // preferred_username; may be empty, not unique

	// Roles are the phivault roles the user's IdP groups map to, sorted
	// and without duplicates; never empty.
	Roles []identity.Role

	// MFA reports whether the IdP states that it checked a second factor
	// (an accepted "amr" value or "acr" value). When false, the caller must
	// ask for phivault's own second factor before any workforce role is
	// usable (DESIGN §7).
	MFA bool

	AMR      []string  // as stated by the IdP, for the audit record
	ACR      string    // as stated by the IdP, for the audit record
	AuthTime time.Time // zero if the IdP did not say
}

// LogValue implements [slog.LogValuer]: the subject and what was granted,
// without email or name.
func (id Identity) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("issuer", id.Issuer),
		slog.String("subject", id.Subject),
		slog.Any("roles", id.Roles),
		slog.Bool("mfa", id.MFA),
	)
}

// tokenClaims are the ID token claims read beyond those go-oidc checks.
type tokenClaims struct {
	Subject           string          `json:"sub"`
	Email             string          `json:"email"`
	EmailVerified     json.RawMessage `json:"email_verified"`
	PreferredUsername string          `json:"preferred_username"`
	AMR               []string        `json:"amr"`
	ACR               string          `json:"acr"`
	AuthTime          *float64        `json:"auth_time"`
}

// parseClaims maps a verified ID token payload to an Identity, using cfg
// (with defaults applied) for the groups claim, role map and MFA values.
// The payload is signed by the IdP but still treated as untrusted input:
// its size is bounded by maxIDTokenBytes before it gets here.
func parseClaims(cfg *Config, payload []byte) (Identity, error) {
	var c tokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Identity{}, fmt.Errorf("%w: claims are not a JSON object of the expected types", ErrInvalidToken)
	}
	if c.Subject == "" {
		return Identity{}, fmt.Errorf("%w: no subject", ErrInvalidToken)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(payload, &all); err != nil {
		return Identity{}, fmt.Errorf("%w: claims are not a JSON object", ErrInvalidToken)
	}
	groups, err := stringList(all[cfg.GroupsClaim])
	if err != nil {
		return Identity{}, fmt.Errorf("%w: claim %q: %v", ErrInvalidToken, cfg.GroupsClaim, err)
	}

	id := Identity{
		Subject:       c.Subject,
		Email:         c.Email,
		EmailVerified: flexBool(c.EmailVerified),
		Username:      c.PreferredUsername,
		AMR:           c.AMR,
		ACR:           c.ACR,
	}
	// auth_time is seconds since 1970 (OIDC Core §2); values outside
	// (0, 2^33) are not times and are dropped rather than overflowed.
	if c.AuthTime != nil && *c.AuthTime > 0 && *c.AuthTime < 1<<33 {
		id.AuthTime = time.Unix(int64(*c.AuthTime), 0).UTC()
	}
	for _, g := range groups {
		if r, ok := cfg.RoleMap[g]; ok && !slices.Contains(id.Roles, r) {
			id.Roles = append(id.Roles, r)
		}
	}
	slices.Sort(id.Roles)
	id.MFA = slices.ContainsFunc(c.AMR, func(v string) bool { return slices.Contains(cfg.MFAValues, v) }) ||
		(c.ACR != "" && slices.Contains(cfg.ACRValues, c.ACR))
	if len(id.Roles) == 0 {
		return id, ErrNoRole
	}
	return id, nil
}

// stringList decodes a claim that is absent, null, a string or an array
// of strings (IdPs differ for single-valued groups).
func stringList(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("not a string")
		}
		return []string{s}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("not a string or an array of strings")
	}
	return list, nil
}

// flexBool reads a JSON boolean, or the strings "true"/"false" that some
// IdPs send for email_verified; anything else is false.
func flexBool(raw json.RawMessage) bool {
	s := string(bytes.TrimSpace(raw))
	return s == "true" || s == `"true"`
}
