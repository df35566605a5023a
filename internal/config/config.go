package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// FileName is the configuration file inside the data directory.
const FileName = "phivault.json"

// DefaultDataDir is used when --data is not given.
const DefaultDataDir = "./phivault-data"

// Default values, each with its reason.
const (
	// DefaultListen binds to loopback: exposing PHI to a network is an
	// explicit decision of the operator.
	DefaultListen = "127.0.0.1:8443"
	// DefaultMaxBodyBytes bounds any request body (16 MiB: a large
	// patient transaction Bundle fits; a memory-exhaustion attempt does not).
	DefaultMaxBodyBytes = 16 << 20
	// DefaultMaxBundleEntries bounds work per Bundle.
	DefaultMaxBundleEntries = 10000
	// DefaultLogName is the origin line of signed audit checkpoints when
	// there is no base URL to derive it from (see [LogNameFor]).
	DefaultLogName = "phivault.localhost/audit"
	// maxLogName bounds the log name: it is the first line of every
	// checkpoint and the name in the verifier key.
	maxLogName = 255
)

// ErrInvalid wraps every validation error; the message names the option.
var ErrInvalid = errors.New("invalid configuration")

// Config is the whole configuration. The zero value is not valid; use
// [Default] or [Load].
type Config struct {
	DataDir string `json:"-"`

	Server  Server  `json:"server"`
	Storage Storage `json:"storage"`
	Keys    Keys    `json:"keys"`
	Audit   Audit   `json:"audit"`
	Limits  Limits  `json:"limits"`
	// Timeouts and Logging: robust.go.
	Timeouts Timeouts `json:"timeouts"`
	Logging  Logging  `json:"logging"`
	// OIDC is enterprise SSO; nil (no "oidc" section) means SSO off.
	OIDC *OIDC `json:"oidc,omitempty"`
	// Export lists the SIEM sinks the audit log is streamed to (export.go).
	Export []ExportSink `json:"export,omitempty"`
	// Subscriptions configures the delivery of FHIR Subscriptions
	// (subscriptions.go).
	Subscriptions Subscriptions `json:"subscriptions"`
	// BulkExport configures FHIR Bulk Data $export (bulk.go).
	BulkExport BulkExport `json:"bulk_export,omitzero"`
	// Auth is the sign-in policy (auth.go).
	Auth Auth `json:"auth"`
	// Observability is metrics, pprof and tracing (observability.go).
	Observability Observability `json:"observability,omitzero"`
	// Monitor is privacy monitoring of the own log (monitor.go).
	Monitor Monitor `json:"monitor,omitzero"`
	// Backup schedules backups and restore drills in serve (backup.go);
	// nil: no schedule.
	Backup *Backup `json:"backup,omitempty"`
}

// Server configures the HTTP listener.
type Server struct {
	Listen  string `json:"listen"`
	BaseURL string `json:"base_url"` // public base, e.g. https://localhost:8443
	TLSCert string `json:"tls_cert"`
	TLSKey  string `json:"tls_key"`
	// Insecure serves plain HTTP. Only for a TLS-terminating proxy on the
	// same host; serve refuses it on a non-loopback address.
	Insecure bool `json:"insecure_http"`
	// CORSOrigins are the browser origins (scheme://host[:port]) allowed
	// to call the FHIR API and the SMART endpoints browser apps use
	// (/.well-known/smart-configuration, the token endpoint) across
	// origins; "*" allows any. Empty (the default): no CORS headers, so
	// browsers refuse cross-origin calls. Credentials (cookies) are never
	// allowed cross-origin: browser apps send their SMART access token.
	// Env: PHIVAULT_CORS_ORIGINS, comma-separated.
	CORSOrigins []string `json:"cors_origins,omitempty"`
}

// Storage selects the database.
type Storage struct {
	Driver      string `json:"driver"` // "sqlite" (default) or "postgres"
	SQLitePath  string `json:"sqlite_path"`
	PostgresURL string `json:"postgres_url"`
}

// LogValue logs the configuration without the PostgreSQL URL, which may
// carry a password.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("data_dir", c.DataDir),
		slog.String("listen", c.Server.Listen),
		slog.Any("storage", c.Storage),
		slog.Bool("kms", c.Keys.KMSURI != ""),
		slog.String("log_name", c.Audit.LogName),
	)
}

// LogValue hides the PostgreSQL URL, which may carry a password.
func (s Storage) LogValue() slog.Value {
	return slog.GroupValue(slog.String("driver", s.Driver), slog.String("sqlite_path", s.SQLitePath))
}

// Keys locates the key-encryption key.
type Keys struct {
	KeyFile string `json:"key_file"` // local Tink keyset (mode 0600), outside the database
	KMSURI  string `json:"kms_uri"`  // e.g. hcvault://vault:8200/transit/keys/phivault

	// kmsToken is the Vault token for KMSURI, from the environment
	// variable VAULT_TOKEN only (secrets never come from the file or
	// flags); never marshalled.
	kmsToken string

	// ShredRetentionDays keeps the KEK keys a KEK epoch retired for this
	// many days before destroying them, so database backups taken before
	// an erasure stay restorable for that long; an erasure is final only
	// when they are destroyed (ADR 0015). 0 (the default) destroys them
	// as soon as every key is re-wrapped.
	ShredRetentionDays int `json:"shred_retention_days,omitempty"`
	// ShredManual stops "serve" from running KEK epochs by itself after
	// an erasure: the operator runs "phivault keys shred-epoch" (a fleet
	// whose processes each hold their own copy of the key file must
	// distribute the new file between the steps; docs/operations.md).
	ShredManual bool `json:"shred_epoch_manual,omitempty"`
}

// maxShredRetentionDays bounds keys.shred_retention_days: about the
// HIPAA six years; longer keeps erased data recoverable longer than any
// retention rule asks.
const maxShredRetentionDays = 6 * 366

// Audit configures the audit log.
type Audit struct {
	// LogName is the origin of the signed checkpoints (C2SP
	// tlog-checkpoint) and the name in the verifier key. init writes
	// [LogNameFor] the base URL into the file, because changing it later
	// changes the verifier key that monitors hold; an empty value in the
	// file means the same derivation at every start.
	LogName string `json:"log_name"`
	// VerifierKey is where init writes the public verifier key.
	VerifierKey string `json:"verifier_key"`
	// SigningKey is obsolete (the signing key now lives in the database,
	// wrapped under the KEK); a configuration that still sets it is
	// refused with instructions, so no plaintext key file lingers.
	SigningKey string `json:"signing_key,omitempty"`
	// CheckpointFile keeps the last checkpoint the log signed, outside
	// the database (ADR 0016): the server refuses to sign a log smaller
	// than, or inconsistent with, it, and "audit verify" checks the log
	// against it. Empty means DefaultCheckpointFile beside keys.key_file
	// (in the data directory with a KMS).
	CheckpointFile string `json:"checkpoint_file,omitempty"`
	// WitnessCheckpoints are files holding checkpoints co-signed by a
	// witness ("audit monitor --cosigned"), copied in by the operator:
	// checked like CheckpointFile, never written.
	WitnessCheckpoints []string `json:"witness_checkpoints,omitempty"`
}

// DefaultCheckpointFile is the name of the kept checkpoint beside the
// key file.
const DefaultCheckpointFile = "log-checkpoint"

// LogNameFor returns the default log name for a base URL: its host (and
// port) followed by "/audit", e.g. "fhir.example.org/audit"; or
// DefaultLogName without a usable base URL.
func LogNameFor(baseURL string) string {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return DefaultLogName
	}
	return strings.ToLower(u.Host) + "/audit"
}

// Limits bounds the work untrusted input can cause.
type Limits struct {
	MaxBodyBytes     int64 `json:"max_body_bytes"`
	MaxBundleEntries int   `json:"max_bundle_entries"`

	// Connection and pace limits (robust.go).
	MaxConnections           int   `json:"max_connections"`
	MaxConnectionsPerAddress int   `json:"max_connections_per_address"` // 0: off
	MinBodyRate              int64 `json:"min_body_bytes_per_second"`   // 0: off
	// AttemptsPerMinute and AttemptBurst bound the audit events of
	// unauthenticated requests per address (package attempt).
	AttemptsPerMinute int `json:"unauthenticated_events_per_minute"`
	AttemptBurst      int `json:"unauthenticated_event_burst"`
}

// Default returns the configuration of a fresh data directory.
func Default(dataDir string) Config {
	return Config{
		DataDir: dataDir,
		Server: Server{
			Listen:  DefaultListen,
			TLSCert: "tls/server.crt",
			TLSKey:  "tls/server.key",
		},
		Storage: Storage{Driver: "sqlite", SQLitePath: "phivault.db"},
		Keys:    Keys{KeyFile: "keys/kek.json"},
		Audit: Audit{
			LogName:     DefaultLogName, // init writes LogNameFor(base URL) instead
			VerifierKey: "log-verifier.pub",
		},
		Limits: Limits{MaxBodyBytes: DefaultMaxBodyBytes, MaxBundleEntries: DefaultMaxBundleEntries,
			MaxConnections: DefaultMaxConnections, MaxConnectionsPerAddress: DefaultMaxConnectionsPerAddress,
			MinBodyRate: DefaultMinBodyRate, AttemptsPerMinute: DefaultAttemptsPerMinute, AttemptBurst: DefaultAttemptBurst},
		Timeouts: defaultTimeouts(),
		Logging:  defaultLogging(),
	}
}

// Overrides are values from flags; empty fields do not override.
type Overrides struct {
	Listen      string
	PostgresURL string
	KeyFile     string
	KMSURI      string
	BaseURL     string
	LogFormat   string // --log-format: "auto", "text" or "json"
}

// Load reads dataDir/phivault.json, applies PHIVAULT_* variables from
// getenv and then flags, resolves paths and validates. A missing file is
// an error: run "phivault init" first.
func Load(dataDir string, getenv func(string) string, o Overrides) (Config, error) {
	c := Default(dataDir)
	b, err := os.ReadFile(filepath.Join(dataDir, FileName))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Config{}, fmt.Errorf("no %s in %s: run \"phivault init --data %s\" first", FileName, dataDir, dataDir)
		}
		return Config{}, fmt.Errorf("reading configuration: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("%w: %s: %v", ErrInvalid, FileName, err)
	}
	c.DataDir = dataDir
	if err := c.applyEnv(getenv); err != nil {
		return Config{}, err
	}
	c.exportEnv(getenv)
	c.backupEnv(getenv)
	c.applyOverrides(o)
	if c.Audit.LogName == "" {
		c.Audit.LogName = LogNameFor(c.Server.BaseURL)
	}
	c.resolvePaths()
	if err := c.OIDC.readSecret(); err != nil {
		return Config{}, err
	}
	if err := c.readExportSecrets(); err != nil {
		return Config{}, err
	}
	if err := c.readMonitorSecret(); err != nil {
		return Config{}, err
	}
	if err := c.Observability.readToken(); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

func (c *Config) applyEnv(getenv func(string) string) error {
	str := map[string]*string{
		"PHIVAULT_LISTEN":      &c.Server.Listen,
		"PHIVAULT_BASE_URL":    &c.Server.BaseURL,
		"PHIVAULT_TLS_CERT":    &c.Server.TLSCert,
		"PHIVAULT_TLS_KEY":     &c.Server.TLSKey,
		"PHIVAULT_POSTGRES":    &c.Storage.PostgresURL,
		"PHIVAULT_SQLITE_PATH": &c.Storage.SQLitePath,
		"PHIVAULT_KEY_FILE":    &c.Keys.KeyFile,
		"PHIVAULT_KMS_URI":     &c.Keys.KMSURI,
		"PHIVAULT_LOG_NAME":    &c.Audit.LogName,
		"PHIVAULT_STORAGE":     &c.Storage.Driver,
		"PHIVAULT_LOG_FORMAT":  &c.Logging.Format,
	}
	for name, p := range str {
		if v := getenv(name); v != "" {
			*p = v
		}
	}
	if v := getenv("PHIVAULT_POSTGRES"); v != "" {
		c.Storage.Driver = "postgres"
	}
	c.Keys.kmsToken = getenv(VaultTokenEnv)
	c.Auth.applyEnv(getenv)
	if err := c.Observability.applyEnv(getenv); err != nil {
		return err
	}
	if c.OIDC != nil {
		for name, p := range map[string]*string{
			"PHIVAULT_OIDC_ISSUER":       &c.OIDC.Issuer,
			"PHIVAULT_OIDC_CLIENT_ID":    &c.OIDC.ClientID,
			"PHIVAULT_OIDC_REDIRECT_URL": &c.OIDC.RedirectURL,
		} {
			if v := getenv(name); v != "" {
				*p = v
			}
		}
		c.OIDC.clientSecret = getenv("PHIVAULT_OIDC_CLIENT_SECRET")
	}
	if v := getenv("PHIVAULT_SHRED_RETENTION_DAYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%w: PHIVAULT_SHRED_RETENTION_DAYS must be an integer", ErrInvalid)
		}
		c.Keys.ShredRetentionDays = n
	}
	if v := getenv("PHIVAULT_CORS_ORIGINS"); v != "" {
		c.Server.CORSOrigins = nil
		for o := range strings.SplitSeq(v, ",") {
			if o = strings.TrimSpace(o); o != "" {
				c.Server.CORSOrigins = append(c.Server.CORSOrigins, o)
			}
		}
	}
	if v := getenv("PHIVAULT_MAX_BODY_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: PHIVAULT_MAX_BODY_BYTES must be an integer", ErrInvalid)
		}
		c.Limits.MaxBodyBytes = n
	}
	return nil
}

func (c *Config) applyOverrides(o Overrides) {
	if o.Listen != "" {
		c.Server.Listen = o.Listen
	}
	if o.PostgresURL != "" {
		c.Storage.Driver = "postgres"
		c.Storage.PostgresURL = o.PostgresURL
	}
	if o.KeyFile != "" {
		c.Keys.KeyFile = o.KeyFile
	}
	if o.KMSURI != "" {
		c.Keys.KMSURI = o.KMSURI
		c.Keys.KeyFile = ""
	}
	if o.BaseURL != "" {
		c.Server.BaseURL = o.BaseURL
	}
	if o.LogFormat != "" {
		c.Logging.Format = o.LogFormat
	}
}

// Resolved returns c with its paths resolved against the data directory
// and their defaults derived, as Load does.
func (c Config) Resolved() Config {
	c.Audit.WitnessCheckpoints = append([]string(nil), c.Audit.WitnessCheckpoints...)
	if c.Backup != nil {
		b := *c.Backup
		if b.S3 != nil {
			s3 := *b.S3
			b.S3 = &s3
		}
		c.Backup = &b
	}
	c.resolvePaths()
	return c
}

func (c *Config) resolvePaths() {
	for _, p := range []*string{&c.Server.TLSCert, &c.Server.TLSKey, &c.Storage.SQLitePath, &c.Keys.KeyFile, &c.Audit.VerifierKey, &c.Audit.CheckpointFile} {
		*p = c.Path(*p)
	}
	for i := range c.Audit.WitnessCheckpoints {
		c.Audit.WitnessCheckpoints[i] = c.Path(c.Audit.WitnessCheckpoints[i])
	}
	if c.Audit.CheckpointFile == "" {
		// Beside the key file: outside the database, where an attacker
		// with only database access cannot reach it.
		dir := c.DataDir
		if c.Keys.KeyFile != "" {
			dir = filepath.Dir(c.Keys.KeyFile)
		}
		c.Audit.CheckpointFile = filepath.Join(dir, DefaultCheckpointFile)
	}
	if c.OIDC != nil {
		c.OIDC.ClientSecretFile = c.Path(c.OIDC.ClientSecretFile)
	}
	c.Observability.resolvePaths(*c)
	c.exportPaths()
	c.monitorPaths()
	c.backupPaths()
}

// WithEnv returns c (a configuration about to be written, as init
// does) with the PHIVAULT_* variables from getenv applied, the log name
// derived and paths resolved, as Load will after reading the file: the
// database, key file and checkpoint file a later command run with the
// same environment uses. It does not validate.
func (c Config) WithEnv(getenv func(string) string) (Config, error) {
	c.Audit.WitnessCheckpoints = append([]string(nil), c.Audit.WitnessCheckpoints...)
	if err := c.applyEnv(getenv); err != nil {
		return Config{}, err
	}
	if c.Audit.LogName == "" {
		c.Audit.LogName = LogNameFor(c.Server.BaseURL)
	}
	c.resolvePaths()
	return c, nil
}

// Path resolves p against the data directory ("" stays "").
func (c Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.DataDir, p)
}

// Validate checks every option; the error names the first bad one.
func (c Config) Validate() error {
	bad := func(opt, why string) error { return fmt.Errorf("%w: %s: %s", ErrInvalid, opt, why) }
	if err := c.Auth.validate(); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(c.Server.Listen)
	if err != nil {
		return bad("server.listen (PHIVAULT_LISTEN, --listen)", "must be host:port")
	}
	if c.Server.Insecure {
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return bad("server.insecure_http", "plain HTTP is allowed on loopback only")
		}
	} else if c.Server.TLSCert == "" || c.Server.TLSKey == "" {
		return bad("server.tls_cert/tls_key", "required unless insecure_http")
	}
	if c.Server.BaseURL != "" {
		u, err := url.Parse(c.Server.BaseURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return bad("server.base_url (PHIVAULT_BASE_URL, --base-url)", "must be an absolute http(s) URL")
		}
	}
	for _, o := range c.Server.CORSOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil || strings.Contains(o, "*") {
			return bad("server.cors_origins (PHIVAULT_CORS_ORIGINS)", `each must be "*" or an origin such as https://app.example.org (scheme, host and port only)`)
		}
	}
	switch c.Storage.Driver {
	case "sqlite":
		if c.Storage.SQLitePath == "" {
			return bad("storage.sqlite_path", "required for the sqlite driver")
		}
	case "postgres":
		if c.Storage.PostgresURL == "" {
			return bad("storage.postgres_url", "this data directory's database is PostgreSQL (storage.driver): set PHIVAULT_POSTGRES or --postgres to its URL")
		}
		u, err := url.Parse(c.Storage.PostgresURL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return bad("storage.postgres_url (PHIVAULT_POSTGRES, --postgres)", "must be a postgres:// URL")
		}
	default:
		return bad("storage.driver (PHIVAULT_STORAGE)", `must be "sqlite" or "postgres"`)
	}
	if (c.Keys.KeyFile == "") == (c.Keys.KMSURI == "") {
		return bad("keys.key_file / keys.kms_uri", "exactly one must be set")
	}
	if c.Keys.ShredRetentionDays < 0 || c.Keys.ShredRetentionDays > maxShredRetentionDays {
		return bad("keys.shred_retention_days (PHIVAULT_SHRED_RETENTION_DAYS)", fmt.Sprintf("must be between 0 and %d", maxShredRetentionDays))
	}
	if c.Audit.LogName == "" || len(c.Audit.LogName) > maxLogName || !utf8.ValidString(c.Audit.LogName) ||
		strings.ContainsRune(c.Audit.LogName, '+') || strings.IndexFunc(c.Audit.LogName, unicode.IsSpace) >= 0 {
		return bad("audit.log_name (PHIVAULT_LOG_NAME)", "required, at most 255 bytes of UTF-8, with no spaces or plus signs (it names the checkpoint signer)")
	}
	for _, w := range c.Audit.WitnessCheckpoints {
		if w == "" {
			return bad("audit.witness_checkpoints", "each entry must name a file")
		}
	}
	if c.Audit.SigningKey != "" {
		return bad("audit.signing_key", "obsolete: the log signing key is now created in the database, wrapped under the KEK; remove the option, securely delete the old key file, and publish the new key (phivault audit pubkey)")
	}
	if c.Limits.MaxBodyBytes < 1024 || c.Limits.MaxBodyBytes > 1<<30 {
		return bad("limits.max_body_bytes", "must be between 1 KiB and 1 GiB")
	}
	if c.Limits.MaxBundleEntries < 1 || c.Limits.MaxBundleEntries > 100000 {
		return bad("limits.max_bundle_entries", "must be between 1 and 100000")
	}
	if err := c.validateRobust(); err != nil {
		return err
	}
	if err := c.Observability.validate(); err != nil {
		return err
	}
	if err := c.Monitor.validate(c.Server.BaseURL); err != nil {
		return err
	}
	if err := c.Backup.validate(); err != nil {
		return err
	}
	return c.validateExport()
}

// Write stores c as dataDir/phivault.json with paths as given (relative
// paths stay relative). It refuses to overwrite an existing file.
func Write(c Config) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding configuration: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(c.DataDir, FileName), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating configuration file: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("writing configuration file: %w", err)
	}
	return f.Close()
}

// VaultTokenEnv names the environment variable holding the Vault token
// for keys.kms_uri (the same name the Vault CLI uses).
const VaultTokenEnv = "VAULT_TOKEN"

// KMSToken returns the Vault token read from VaultTokenEnv, or "".
func (k Keys) KMSToken() string { return k.kmsToken }
