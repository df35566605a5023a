package app

import (
	"crypto/rand"
	"errors"
	"log/slog"
	"time"

	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/httpapi"
	"github.com/phivault/phivault/internal/identity/account"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// The administration services (account.Service, account.Tokens,
// smart.Admin) hold the use-cases; app only hands each the narrow views
// of the database it needs.

// Accounts returns the account service of a. Each call creates a new
// password Hasher (with its own concurrency bound), so callers keep the
// result rather than calling it per request.
func (a *App) Accounts() (*account.Service, error) {
	st := a.db
	h, err := password.NewHasher(password.HasherConfig{})
	if err != nil {
		return nil, err
	}
	if a.authRows == nil {
		return nil, errors.New("account administration needs the auth-rows key")
	}
	return account.NewService(account.Deps{
		Users: st.Users(), Sessions: st.Sessions(), Revoke: sqldb.NewUnit[session.Tx](st), Appender: st,
		Store: sqldb.NewUnit[account.Tx](st), Log: a.Log, Hasher: h, Lookup: a.authRows, Now: time.Now, Rand: rand.Reader,
	}), nil
}

var _ httpapi.Accounts = (*account.Service)(nil)

// adminAccounts is the account service for the HTTP handler, or nil
// (the admin endpoints then answer 503) if it cannot be built.
func (a *App) adminAccounts() httpapi.Accounts {
	acc, err := a.Accounts()
	if err != nil {
		a.logger.Error("account administration unavailable", slog.String("error", err.Error()))
		return nil
	}
	return acc
}

// Tokens returns API token creation (the offline CLI's "phivault token
// create", and tests).
func (a *App) Tokens() *account.Tokens {
	return account.NewTokens(sqldb.NewUnit[account.TokenTx](a.db), a.authRows, a.Log)
}

// ClientAdmin returns the SMART client administration service of a.
func (a *App) ClientAdmin() *smart.Admin {
	sq := a.db
	return smart.NewAdmin(smart.AdminOptions{Clients: sq.Smart(), Tx: sqldb.NewUnit[smart.AdminTx](sq), Appender: sq, Log: a.Log, Now: time.Now})
}

var _ httpapi.ClientApprovals = (*smart.Admin)(nil)

// clientApprovals is the client side of /admin/api/requests.
func (a *App) clientApprovals() httpapi.ClientApprovals { return a.ClientAdmin() }
