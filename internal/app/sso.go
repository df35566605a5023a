package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/phivault/phivault/internal/identity/account"

	"github.com/phivault/phivault/internal/authn/oidc"
	"github.com/phivault/phivault/internal/authn/sso"
	"github.com/phivault/phivault/internal/httpapi/signin"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// idpTimeout bounds every call to the OIDC IdP: a login waits at most
// this long for discovery, keys or the token endpoint (STYLE rule 29).
const idpTimeout = 10 * time.Second

// openSSO builds enterprise sign-in when the oidc section is enabled. A
// bad configuration refuses the start; an IdP that cannot be discovered
// only leaves SSO off (logged): local logins and the FHIR API must not
// depend on the IdP being up when phivault starts.
func (a *App) openSSO(ctx context.Context, oo openOptions) error {
	c := a.Config.OIDC
	if !c.On() {
		return nil
	}
	cfg, err := oidcConfig(*c)
	if err != nil {
		return fmt.Errorf("opening sso: %w", err)
	}
	client := oo.idp
	if client == nil {
		client = &http.Client{Timeout: idpTimeout}
	}
	rp, err := oidc.New(ctx, cfg, client, oo.now)
	if errors.Is(err, oidc.ErrDiscovery) {
		a.logger.ErrorContext(ctx, "enterprise sso disabled: the identity provider could not be discovered", slog.String("error", err.Error()))
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening sso: %w", err)
	}
	sq := a.db
	accounts := account.SSOAccounts{SSOUsers: sq.Users(), Store: sqldb.NewUnit[account.Tx](sq), Log: a.Log, Now: oo.now}
	a.SSO, err = sso.New(sso.Options{RP: rp, Issuer: cfg.Issuer, Accounts: accounts, Login: a.Login, Keys: a.Keys,
		Log: a.Log, NoAutoProvision: !c.Provision(), Now: oo.now})
	if err != nil {
		return fmt.Errorf("opening sso: %w", err)
	}
	return nil
}

// ssoHandler is a.SSO for the HTTP layer: a nil interface when SSO is
// off (never a typed nil).
func (a *App) ssoHandler() signin.SSO {
	if a.SSO == nil {
		return nil
	}
	return a.SSO
}

var _ sso.Accounts = account.SSOAccounts{}
