package app

import (
	"fmt"
	"sort"

	"github.com/phivault/phivault/internal/audit/export"
	"github.com/phivault/phivault/internal/authn/oidc"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/monitor/notify"
)

// CheckConfig checks what only the domains know: the OIDC relying party
// (issuer, redirect, role map), the SIEM sinks' redactions and the
// SMTP server's CA file. config
// checks the file's shape and stays a leaf; the CLI calls CheckConfig
// right after loading, so a bad value is refused before anything
// starts, with an error that wraps config.ErrInvalid and names the
// option. Open builds the same values and fails on them too.
func CheckConfig(c config.Config) error {
	if c.OIDC.On() {
		if _, err := oidcConfig(*c.OIDC); err != nil {
			return fmt.Errorf("%w: %w", config.ErrInvalid, err)
		}
	}
	for i, s := range c.Export {
		if _, err := export.NewRedaction(s.Redact); err != nil {
			return fmt.Errorf("%w: export[%d].redact: %s", config.ErrInvalid, i, err.Error())
		}
	}
	if s := c.Monitor.SMTP; s != nil {
		if _, err := notify.NewMailer(*s, nil); err != nil {
			return fmt.Errorf("%w: %s", config.ErrInvalid, err.Error())
		}
	}
	return nil
}

// oidcConfig returns the relying-party configuration of the oidc
// section, validated; errors wrap oidc.ErrInvalidConfig and name the
// option.
func oidcConfig(o config.OIDC) (oidc.Config, error) {
	c := oidc.Config{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret(), RedirectURL: o.RedirectURL,
		Scopes: o.Scopes, GroupsClaim: o.GroupsClaim, MFAValues: o.MFAValues, ACRValues: o.ACRValues,
		RoleMap: make(map[string]identity.Role, len(o.RoleMap))}
	groups := make([]string, 0, len(o.RoleMap))
	for g := range o.RoleMap {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		r := identity.Role(o.RoleMap[g])
		// A patient account must name its Patient resource, which an IdP
		// cannot: patients are not provisioned by SSO.
		if r == identity.RolePatient {
			return oidc.Config{}, fmt.Errorf("%w: oidc.role_map: group %q: role %q cannot be granted by SSO", oidc.ErrInvalidConfig, g, r)
		}
		c.RoleMap[g] = r
	}
	if err := c.Validate(); err != nil {
		return oidc.Config{}, err
	}
	return c, nil
}
