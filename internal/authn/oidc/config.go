package oidc

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"sort"

	"github.com/phivault/phivault/internal/identity"
)

// DefaultGroupsClaim is the ID token claim read for IdP groups when
// [Config.GroupsClaim] is empty. Okta, Dex, Keycloak (with a groups
// mapper) and Entra ID (with groupMembershipClaims) use this name.
const DefaultGroupsClaim = "groups"

// DefaultScopes are requested when [Config.Scopes] is empty: "openid"
// (required, OIDC Core §3.1.2.1), and "email" and "profile" for the
// email and preferred_username claims. IdPs that put groups in the ID
// token only on request (Okta, Dex) also need "groups".
func DefaultScopes() []string { return []string{"openid", "email", "profile"} }

// DefaultMFAValues are the "amr" values (RFC 8176 §2) accepted as proof
// that the IdP checked a second factor when [Config.MFAValues] is empty:
//
//   - mfa, mca: the IdP says several factors or channels were used;
//   - otp, hwk, swk, sc: something the user has (one-time code, hardware
//     or software key, smart card);
//   - fpt, face, iris, retina: something the user is (biometrics are
//     only ever used with a device, so they imply possession too).
//
// Not included: "pwd", "pin", "kba" (something known: the first factor),
// "sms" and "tel" (NIST SP 800-63B §5.1.3.3 restricts the public
// telephone network as an authenticator), "geo", "rba", "wia", "user",
// "pop", "vbm" (not a factor, or too weak alone). Operators may add them.
func DefaultMFAValues() []string {
	return []string{"mfa", "mca", "otp", "hwk", "swk", "sc", "fpt", "face", "iris", "retina"}
}

// Config is the SSO relying-party configuration. It is read once by
// internal/config (file, then PHIVAULT_OIDC_* environment, then flags)
// and handed to [New]; the zero value of each optional field means its
// default. New copies it: later changes have no effect.
type Config struct {
	// Issuer is the IdP's issuer URL exactly as its discovery document
	// states it (compared byte for byte, OIDC Discovery §4.3). It must be
	// https (OIDC Core §3.1.2.1). Option oidc.issuer.
	Issuer string

	// ClientID is phivault's client id at the IdP; ID tokens must be
	// addressed to it. Option oidc.client_id.
	ClientID string

	// ClientSecret authenticates phivault at the token endpoint. It is
	// a secret (STYLE rule 23): it comes from the PHIVAULT_OIDC_CLIENT_SECRET
	// environment variable or from the file named by oidc.client_secret_file
	// (mode 0600), never from a flag or the configuration file, and it
	// is redacted by [Config.LogValue].
	ClientSecret string

	// RedirectURL is phivault's callback URL, registered at the IdP. It
	// must be https, or http on a loopback address for development.
	// Option oidc.redirect_url.
	RedirectURL string

	// Scopes requested; must include "openid". Empty means
	// [DefaultScopes]. Option oidc.scopes.
	Scopes []string

	// GroupsClaim names the top-level ID token claim that lists the
	// user's IdP groups (an array of strings, or one string). Empty means
	// [DefaultGroupsClaim]. Option oidc.groups_claim.
	GroupsClaim string

	// RoleMap maps an IdP group (exact, case-sensitive) to a phivault
	// role. Groups not in the map are ignored; a user none of whose
	// groups is mapped is refused ([ErrNoRole]). The "system" role is
	// for SMART backend clients and cannot be mapped. Required.
	// Option oidc.role_map.
	RoleMap map[string]identity.Role

	// MFAValues are the "amr" values that count as an IdP second factor.
	// Empty means [DefaultMFAValues]. Option oidc.mfa_values.
	MFAValues []string

	// ACRValues are "acr" values that count as an IdP second factor (for
	// IdPs that state assurance levels rather than methods, e.g.
	// "http://schemas.openid.net/pape/policies/2007/06/multi-factor").
	// When set they are also sent as the acr_values request parameter, a
	// hint to the IdP (OIDC Core §3.1.2.1). Empty means none.
	// Option oidc.acr_values.
	ACRValues []string
}

// LogValue implements [slog.LogValuer]; the client secret is never logged.
func (c Config) LogValue() slog.Value {
	secret := "unset"
	if c.ClientSecret != "" {
		secret = "REDACTED"
	}
	return slog.GroupValue(
		slog.String("issuer", c.Issuer),
		slog.String("client_id", c.ClientID),
		slog.String("client_secret", secret),
		slog.String("redirect_url", c.RedirectURL),
		slog.Any("scopes", c.Scopes),
		slog.Int("role_map_entries", len(c.RoleMap)),
	)
}

// Validate checks every option; the error wraps [ErrInvalidConfig] and
// names the first bad one. It does not contact the IdP ([New] does).
func (c Config) Validate() error {
	bad := func(opt, why string) error { return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, opt, why) }
	if u, err := url.Parse(c.Issuer); err != nil || u.Scheme != "https" || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return bad("oidc.issuer (PHIVAULT_OIDC_ISSUER)", "must be an https URL without query, fragment or user info")
	}
	if c.ClientID == "" {
		return bad("oidc.client_id (PHIVAULT_OIDC_CLIENT_ID)", "required")
	}
	if c.ClientSecret == "" {
		return bad("oidc client secret (PHIVAULT_OIDC_CLIENT_SECRET or oidc.client_secret_file)", "required")
	}
	if u, err := url.Parse(c.RedirectURL); err != nil || u.Host == "" || u.Fragment != "" ||
		!(u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname()))) {
		return bad("oidc.redirect_url (PHIVAULT_OIDC_REDIRECT_URL)", "must be an https URL (http only on loopback), without fragment")
	}
	if len(c.Scopes) > 0 && !slices.Contains(c.Scopes, "openid") {
		return bad("oidc.scopes", `must include "openid"`)
	}
	if len(c.RoleMap) == 0 {
		return bad("oidc.role_map", "map at least one IdP group to a phivault role")
	}
	groups := make([]string, 0, len(c.RoleMap))
	for g := range c.RoleMap {
		groups = append(groups, g)
	}
	sort.Strings(groups) // the first bad entry is reported deterministically
	for _, g := range groups {
		r := c.RoleMap[g]
		if g == "" {
			return bad("oidc.role_map", "empty group name")
		}
		if !slices.Contains(identity.Roles(), r) {
			return bad("oidc.role_map", fmt.Sprintf("group %q: unknown role %q", g, r))
		}
		if r == identity.RoleSystem {
			return bad("oidc.role_map", fmt.Sprintf("group %q: role %q is for backend clients, not people", g, r))
		}
	}
	if slices.Contains(c.MFAValues, "") {
		return bad("oidc.mfa_values", "empty value")
	}
	if slices.Contains(c.ACRValues, "") {
		return bad("oidc.acr_values", "empty value")
	}
	return nil
}

// withDefaults returns a deep copy of c with defaults filled in.
func (c Config) withDefaults() Config {
	out := c
	out.Scopes = slices.Clone(c.Scopes)
	if len(out.Scopes) == 0 {
		out.Scopes = DefaultScopes()
	}
	if out.GroupsClaim == "" {
		out.GroupsClaim = DefaultGroupsClaim
	}
	out.RoleMap = make(map[string]identity.Role, len(c.RoleMap))
	for g, r := range c.RoleMap {
		out.RoleMap[g] = r
	}
	out.MFAValues = slices.Clone(c.MFAValues)
	if len(out.MFAValues) == 0 {
		out.MFAValues = DefaultMFAValues()
	}
	out.ACRValues = slices.Clone(c.ACRValues)
	return out
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
