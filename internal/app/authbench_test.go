package app_test

import (
	"io"
	"log/slog"
	"net/netip"
	"os"
	"testing"

	"golang.org/x/time/rate"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/keys"
)

// Authentication costs (issue 3, item 10; bench/README.md "Authentication
// costs"). The other per-request principal benchmarks are
// BenchmarkPrincipalAPIToken (internal/authn) and BenchmarkPrincipalSMART
// (internal/authn/smart/smarttest).

const benchPW = "correct horse battery staple"

// BenchmarkPrincipalSession is what a cookie-authenticated request pays
// to become a principal: session lookup by token hash, expiry checks and
// the user load, on SQLite. Activity is written at most once per
// session.TouchInterval, so the loop measures the read path.
func BenchmarkPrincipalSession(b *testing.B) {
	s := openBenchApp(b)
	acc, err := s.Accounts()
	if err != nil {
		b.Fatal(err)
	}
	actor := audit.Agent{User: "bench", Client: "cli"}
	// A patient account logs in with its password alone.
	u, secret, err := acc.Add(b.Context(), actor, identity.User{Username: "bench.patient", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/p1"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := acc.Enrol(b.Context(), actor, u.Username, secret.Reveal(), benchPW); err != nil {
		b.Fatal(err)
	}
	res, err := s.Login.Login(b.Context(), u.Username, benchPW, netip.MustParseAddr("127.0.0.1"))
	if err != nil || res.Session == nil {
		b.Fatalf("login: %v %+v", err, res)
	}
	tok := res.Session.Secret.Reveal()
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		p, err := s.Login.Authenticate(ctx, tok)
		if err != nil || p.ID != u.ID {
			b.Fatal(err)
		}
	}
}

// BenchmarkArgon2idLogin is one password login through the production
// login service with the production hasher (argon2id DefaultParams): the
// address limit, the lockout read, the user load, the KDF and the MFA
// challenge. The KDF alone is password.BenchmarkVerifyDefault
// (internal/authn/password), and the machine's login throughput under
// concurrency is password.BenchmarkHasherVerifyParallel.
func BenchmarkArgon2idLogin(b *testing.B) {
	// The default address limit would refuse the loop after 20 logins.
	s := openBenchApp(b, app.WithLoginOptions(func(o *login.Options) {
		o.AddressLimits = password.AddressLimits{Rate: rate.Inf}
	}))
	acc, err := s.Accounts()
	if err != nil {
		b.Fatal(err)
	}
	actor := audit.Agent{User: "bench", Client: "cli"}
	u, secret, err := acc.Add(b.Context(), actor, identity.User{Username: "bench.nurse", Roles: []identity.Role{identity.RoleNurse}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := acc.Enrol(b.Context(), actor, u.Username, secret.Reveal(), benchPW); err != nil {
		b.Fatal(err)
	}
	svc := s.Login
	addr := netip.MustParseAddr("127.0.0.1")
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		res, err := svc.Login(ctx, u.Username, benchPW, addr)
		if err != nil || !res.MFARequired {
			b.Fatalf("login: %v %+v", err, res)
		}
	}
}

// openBenchApp opens phivault on a fresh SQLite data directory with the
// production login defaults, adjusted by opts.
func openBenchApp(b *testing.B, opts ...app.Option) *app.App {
	b.Helper()
	c := config.Default(b.TempDir())
	c.Storage.Driver = "sqlite"
	c.Storage.SQLitePath = c.Path(c.Storage.SQLitePath)
	if err := os.MkdirAll(c.Path("keys"), 0o700); err != nil {
		b.Fatal(err)
	}
	c.Keys.KeyFile = c.Path(c.Keys.KeyFile)
	if err := keys.CreateKeyFile(c.Keys.KeyFile); err != nil {
		b.Fatal(err)
	}
	c.Server.BaseURL = "https://127.0.0.1:8443"
	if err := c.Validate(); err != nil {
		b.Fatal(err)
	}
	a, err := app.Open(b.Context(), c, slog.New(slog.NewJSONHandler(io.Discard, nil)), opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	return a
}
