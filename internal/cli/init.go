package cli

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"

	"github.com/spf13/cobra"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/identity"
)

func (e *env) initCmd() *cobra.Command {
	var o initOptions
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a data directory: configuration, key file, TLS certificate, log signing key, first token",
		Long: `init creates a new data directory. It writes:

  phivault.json            the configuration
  keys/kek.json            the key-encryption key (mode 0600); keep it apart from
                           database backups, or put it on another volume with --key-file
  log-verifier.pub         the public verifier key of the audit log (its Ed25519
                           signing key is stored in the database, wrapped
                           under the key-encryption key)
  tls/ca.crt               a new local CA (its private key is discarded)
  tls/server.crt, .key     a localhost certificate signed by that CA

It refuses to overwrite anything, and prints an admin API token once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.dataDir = e.dataDir
			return e.runInit(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.keyFile, "key-file", "", "where to create the key-encryption key file (default DATA/keys/kek.json)")
	f.StringVar(&o.kmsURI, "kms-uri", "", "use a KMS key instead of a key file (Tink KMS URI, e.g. hcvault://host/transit/keys/name)")
	f.StringVar(&o.postgres, "postgres", "", "use PostgreSQL at this URL instead of the embedded SQLite")
	f.StringVar(&o.logName, "log-name", "", "origin name of the audit log's signed checkpoints (default: the base URL's host followed by /audit)")
	f.StringVar(&o.listen, "listen", config.DefaultListen, "address to listen on")
	f.StringVar(&o.adminUser, "admin-user", defaultAdminUser, "username of the first security admin")
	return cmd
}

// defaultAdminUser is the username of the first security admin.
const defaultAdminUser = "admin"

type initOptions struct {
	dataDir, keyFile, kmsURI, postgres, logName, listen string
	adminUser                                           string // "" means defaultAdminUser
	quiet                                               bool
}

// runInit creates the data directory; it is also the first step of demo.
func (e *env) runInit(cmd *cobra.Command, o initOptions) error {
	ctx := cmd.Context()
	if _, err := os.Stat(filepath.Join(o.dataDir, config.FileName)); err == nil {
		return fmt.Errorf("%s already holds a phivault configuration; init never overwrites", o.dataDir)
	}
	for _, d := range []string{o.dataDir, filepath.Join(o.dataDir, "keys"), filepath.Join(o.dataDir, "tls")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	c := config.Default(o.dataDir)
	c.Server.Listen = o.listen
	if o.postgres != "" {
		// The URL is written so that later commands on this directory
		// find the database, but never its password (a credential in a
		// file that backups copy): the server reads it from PGPASSWORD or
		// a .pgpass file, as every PostgreSQL client does.
		c.Storage.Driver, c.Storage.PostgresURL = "postgres", withoutPassword(o.postgres)
		if c.Storage.PostgresURL != o.postgres {
			fmt.Fprintln(e.stderr, "phivault: the PostgreSQL password was not written into phivault.json: give it to every command as PGPASSWORD, in a .pgpass file, or with PHIVAULT_POSTGRES")
		}
	}
	switch {
	case o.kmsURI != "":
		c.Keys.KeyFile, c.Keys.KMSURI = "", o.kmsURI
	case o.keyFile != "":
		abs, err := filepath.Abs(o.keyFile)
		if err != nil {
			return fmt.Errorf("resolving --key-file: %w", err)
		}
		c.Keys.KeyFile = abs
	}
	if _, port, err := net.SplitHostPort(o.listen); err == nil {
		c.Server.BaseURL = "https://localhost:" + port
	}
	// The log name is written into the file: changing it later would
	// change the verifier key that monitors hold.
	c.Audit.LogName = o.logName
	if c.Audit.LogName == "" {
		c.Audit.LogName = config.LogNameFor(c.Server.BaseURL)
	}
	// Validate before creating anything else. The database, key file
	// and kept checkpoint are those later commands use: with the
	// PHIVAULT_* variables (PHIVAULT_POSTGRES among them) applied, or
	// init would create a SQLite database, its log key and checkpoint
	// that the server, run with the same environment, never opens.
	resolved, err := c.WithEnv(e.getenv)
	if err != nil {
		return err
	}
	if err := resolved.Validate(); err != nil {
		return err
	}
	if err := app.CheckConfig(resolved); err != nil {
		return err
	}
	if o.adminUser == "" {
		o.adminUser = defaultAdminUser
	}
	if err := identity.ValidateUsername(o.adminUser); err != nil {
		return fmt.Errorf("--admin-user: %w", err)
	}
	// The driver is written into the file (never the PostgreSQL URL, a
	// credential): a later command run without PHIVAULT_POSTGRES then
	// fails with what to set instead of opening a new SQLite database
	// and answering about it.
	c.Storage.Driver = resolved.Storage.Driver
	caCert := filepath.Join(o.dataDir, "tls", "ca.crt")
	made, err := app.Provision(ctx, app.Provisioning{Config: resolved, CACert: caCert, AdminUser: o.adminUser,
		WriteConfig: func() error { return config.Write(c) }, Logger: e.logger()})
	if err != nil {
		return err
	}
	if o.quiet {
		return nil
	}
	fmt.Fprintf(e.stdout, `phivault data directory created: %s

  configuration     %s
  key file (KEK)    %s  (mode 0600; keep it off database backups)
  audit verifier    %s
  TLS CA            %s
  CA fingerprint    SHA-256 %s

Admin API token (shown once; store it in a password manager):

  %s

Security admin %q (role security-admin).
%s
Role grants that reach patient data, and new security admins, need a
second security admin's approval. Create the second one now, from this
host:  phivault user add NAME --roles security-admin --break-glass --data %s

Start the server with:  phivault serve --data %s
`, o.dataDir, filepath.Join(o.dataDir, config.FileName), describeKEK(resolved), made.VerifierKey,
		caCert, made.CAFingerprint, made.Token.Reveal(), made.Admin.Username,
		invitationText(resolved.Server.BaseURL, made.Admin.Username, made.Enrolment.Reveal(), made.EnrolmentLifetime), o.dataDir, o.dataDir)
	return nil
}

func describeKEK(c config.Config) string {
	if c.Keys.KMSURI != "" {
		return c.Keys.KMSURI
	}
	return c.Keys.KeyFile
}

// withoutPassword returns a PostgreSQL connection string without its
// password: a URL's user info, or a keyword/value string's password=.
func withoutPassword(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if _, has := u.User.Password(); has {
			u.User = url.User(u.User.Username())
		}
		q := u.Query()
		if q.Has("password") {
			q.Del("password")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return passwordKV.ReplaceAllString(dsn, "")
}

// passwordKV matches password=value in a keyword/value connection string
// (value quoted or not).
var passwordKV = regexp.MustCompile(`(?i)\bpassword\s*=\s*('(\\.|[^'])*'|\S+)\s*`)
