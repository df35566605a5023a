package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/identity/account"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/tlsca"
)

// Provisioning is what "phivault init" asks Provision to create.
type Provisioning struct {
	// Config is the resolved configuration (environment applied,
	// validated, CheckConfig passed) of the new instance.
	Config config.Config
	// CACert is where the new local CA's certificate is written.
	CACert string
	// AdminUser is the username of the first security admin.
	AdminUser string
	// WriteConfig writes the configuration file; Provision calls it once
	// the key file and TLS files exist, before the database is created.
	WriteConfig func() error
	Logger      *slog.Logger
}

// Provisioned is what Provision made; the secrets are shown once.
type Provisioned struct {
	VerifierKey   string // the audit log's note verifier key
	CAFingerprint string // SHA-256 of the local CA's certificate, hex
	Token         authn.Secret
	Admin         identity.User
	Enrolment     authn.Secret // the first admin's one-time enrolment secret
	// EnrolmentLifetime is how long the enrolment secret is valid.
	EnrolmentLifetime time.Duration
}

// Provision creates a new instance: it refuses a database that holds a
// data set already (before anything is created, so nothing is left half
// made), creates the key file, the local CA and the server's
// certificate, writes the configuration, creates the database with its
// system keys, writes the log verifier key, and creates the admin API
// token and the first security admin. The first administrator cannot be
// approved by a second one: provisioning, run by the operator who holds
// the key file, is the break-glass path (ADR 0018), and raises the alert
// that says so.
func Provision(ctx context.Context, p Provisioning) (Provisioned, error) {
	var out Provisioned
	c := p.Config
	if err := requireEmptyDatabase(ctx, c); err != nil {
		return out, err
	}
	if c.Keys.KeyFile != "" {
		if err := os.MkdirAll(filepath.Dir(c.Keys.KeyFile), 0o700); err != nil {
			return out, fmt.Errorf("creating key directory: %w", err)
		}
		if err := keys.CreateKeyFile(c.Keys.KeyFile); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return out, fmt.Errorf("key file %s already exists; init never overwrites", c.Keys.KeyFile)
			}
			return out, err
		}
	}
	fp, err := tlsca.Create(tlsca.Files{CACert: p.CACert, ServerCert: c.Server.TLSCert, ServerKey: c.Server.TLSKey}, time.Now())
	if err != nil {
		return out, err
	}
	out.CAFingerprint = fp
	if err := p.WriteConfig(); err != nil {
		return out, err
	}
	// Open creates the system keys, the log signing key among them.
	a, err := Open(ctx, c, p.Logger)
	if err != nil {
		return out, fmt.Errorf("creating the database: %w", err)
	}
	defer a.Close()
	out.VerifierKey = a.tlog.VerifierKey()
	if err := tlsca.WriteNew(c.Audit.VerifierKey, []byte(out.VerifierKey+"\n"), 0o644); err != nil {
		return out, err
	}
	if out.Token, err = a.Tokens().Create(ctx, "admin", []string{"system"}); err != nil {
		return out, err
	}
	acc, err := a.Accounts()
	if err != nil {
		return out, err
	}
	out.Admin, out.Enrolment, err = acc.AddBreakGlass(ctx, audit.Agent{Client: "cli"}, identity.User{Username: p.AdminUser, Roles: []identity.Role{identity.RoleSecurityAdmin}})
	if err != nil {
		return out, fmt.Errorf("creating the first security admin: %w", err)
	}
	out.EnrolmentLifetime = account.EnrolmentLifetime
	return out, nil
}

// requireEmptyDatabase refuses a database that already holds a phivault
// data set (its system keys exist). The URL is not named: it may hold a
// password.
func requireEmptyDatabase(ctx context.Context, c config.Config) error {
	st, err := openStore(ctx, c.Storage, c.Timeouts, false)
	if err != nil {
		return err
	}
	defer st.Close()
	_, err = st.Key(ctx, keys.SystemLogSigner)
	switch {
	case err == nil:
		where := "storage.postgres_url (PHIVAULT_POSTGRES, --postgres)"
		if c.Storage.Driver != "postgres" {
			where = c.Storage.SQLitePath
		}
		return fmt.Errorf("the database at %s already holds a phivault data set: init needs a new, empty database (a data set is opened with its own data directory and key file)", where)
	case errors.Is(err, storage.ErrNotFound):
		return nil
	}
	return fmt.Errorf("checking the database: %w", err)
}
