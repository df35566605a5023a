package app

import (
	"context"
	"log/slog"

	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/demo"
)

// SeedDemo loads n synthetic patients into the new instance of c and
// creates the demo accounts (package demo); progress, if set, is called
// after each stored bundle. The set-up makes 3 logins per account from
// one address: the per-address login limit is lifted for this
// short-lived instance only.
func SeedDemo(ctx context.Context, c config.Config, logger *slog.Logger, n int, progress func()) ([]demo.Account, error) {
	a, err := Open(ctx, c, logger, WithLoginOptions(func(o *login.Options) { o.AddressLimits.Burst = 1000 }))
	if err != nil {
		return nil, err
	}
	defer a.Close()
	op := a.Operator("demo")
	if err := demo.LoadPatients(ctx, op, n, progress); err != nil {
		return nil, err
	}
	acc, err := a.Accounts()
	if err != nil {
		return nil, err
	}
	return demo.CreateAccounts(ctx, demo.Services{Accounts: acc, Login: a.Login, Record: op})
}
