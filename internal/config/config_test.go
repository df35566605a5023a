package config_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/config"
)

// writeConfig writes dir/phivault.json.
func writeConfig(t *testing.T, dir, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, config.FileName), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// env is a hand-written getenv.
type env map[string]string

func (e env) get(name string) string { return e[name] }

func TestLoadPrecedence(t *testing.T) {
	const file = `{"server":{"listen":"127.0.0.1:1001","base_url":"https://file.example"},` +
		`"keys":{"key_file":"file-kek.json"}}`
	tests := []struct {
		name        string
		env         env
		flags       config.Overrides
		wantListen  string
		wantBase    string
		wantKeyFile string // relative to the data dir
	}{
		{"file only", nil, config.Overrides{}, "127.0.0.1:1001", "https://file.example", "file-kek.json"},
		{"env over file", env{"PHIVAULT_LISTEN": "127.0.0.1:1002", "PHIVAULT_BASE_URL": "https://env.example", "PHIVAULT_KEY_FILE": "env-kek.json"},
			config.Overrides{}, "127.0.0.1:1002", "https://env.example", "env-kek.json"},
		{"flags over env", env{"PHIVAULT_LISTEN": "127.0.0.1:1002", "PHIVAULT_BASE_URL": "https://env.example", "PHIVAULT_KEY_FILE": "env-kek.json"},
			config.Overrides{Listen: "127.0.0.1:1003", BaseURL: "https://flag.example", KeyFile: "flag-kek.json"},
			"127.0.0.1:1003", "https://flag.example", "flag-kek.json"},
		{"flags over file without env", nil, config.Overrides{Listen: "127.0.0.1:1003"}, "127.0.0.1:1003", "https://file.example", "file-kek.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeConfig(t, dir, file)
			c, err := config.Load(dir, tt.env.get, tt.flags)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Server.Listen != tt.wantListen {
				t.Errorf("listen: got %q, want %q", c.Server.Listen, tt.wantListen)
			}
			if c.Server.BaseURL != tt.wantBase {
				t.Errorf("base_url: got %q, want %q", c.Server.BaseURL, tt.wantBase)
			}
			if want := filepath.Join(dir, tt.wantKeyFile); c.Keys.KeyFile != want {
				t.Errorf("key_file: got %q, want %q", c.Keys.KeyFile, want)
			}
			if c.DataDir != dir {
				t.Errorf("data dir: got %q, want %q", c.DataDir, dir)
			}
		})
	}
}

func TestLoadPostgresAndKMSOverrides(t *testing.T) {
	tests := []struct {
		name       string
		env        env
		flags      config.Overrides
		wantDriver string
		wantURL    string
		wantKMS    string
		wantNoFile bool
	}{
		{"env postgres selects the driver", env{"PHIVAULT_POSTGRES": "postgres://db/phi"}, config.Overrides{}, "postgres", "postgres://db/phi", "", false},
		{"flag postgres over env", env{"PHIVAULT_POSTGRES": "postgres://env/phi"}, config.Overrides{PostgresURL: "postgres://flag/phi"}, "postgres", "postgres://flag/phi", "", false},
		{"flag kms replaces the key file", nil, config.Overrides{KMSURI: "hcvault://vault:8200/transit/keys/pv"}, "sqlite", "", "hcvault://vault:8200/transit/keys/pv", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeConfig(t, dir, `{}`)
			c, err := config.Load(dir, tt.env.get, tt.flags)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Storage.Driver != tt.wantDriver || c.Storage.PostgresURL != tt.wantURL {
				t.Errorf("storage: got %s %q, want %s %q", c.Storage.Driver, c.Storage.PostgresURL, tt.wantDriver, tt.wantURL)
			}
			if c.Keys.KMSURI != tt.wantKMS || (c.Keys.KeyFile == "") != tt.wantNoFile {
				t.Errorf("keys: got %+v", c.Keys)
			}
		})
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name     string
		file     *string // nil: no file
		env      env
		wantText string
		invalid  bool // wraps ErrInvalid
	}{
		{"missing file", nil, nil, "phivault init", false},
		{"unknown field", ptr(`{"server":{"listen":"127.0.0.1:1","tls_certificate":"x"}}`), nil, "tls_certificate", true},
		{"unknown section", ptr(`{"secrets":{}}`), nil, "secrets", true},
		{"malformed JSON", ptr(`{"server":`), nil, config.FileName, true},
		{"non-integer body limit", ptr(`{}`), env{"PHIVAULT_MAX_BODY_BYTES": "lots"}, "PHIVAULT_MAX_BODY_BYTES", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.file != nil {
				writeConfig(t, dir, *tt.file)
			}
			_, err := config.Load(dir, tt.env.get, config.Overrides{})
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not name %q", err, tt.wantText)
			}
			if errors.Is(err, config.ErrInvalid) != tt.invalid {
				t.Errorf("errors.Is(err, ErrInvalid) = %v, want %v (%v)", !tt.invalid, tt.invalid, err)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestValidateNamesTheOption(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *config.Config)
		option string
	}{
		{"listen without port", func(c *config.Config) { c.Server.Listen = "localhost" }, "server.listen"},
		{"insecure on all interfaces", func(c *config.Config) { c.Server.Insecure = true; c.Server.Listen = "0.0.0.0:8080" }, "server.insecure_http"},
		{"insecure on empty host", func(c *config.Config) { c.Server.Insecure = true; c.Server.Listen = ":8080" }, "server.insecure_http"},
		{"insecure on a LAN address", func(c *config.Config) { c.Server.Insecure = true; c.Server.Listen = "192.168.1.10:8080" }, "server.insecure_http"},
		{"insecure on a host name", func(c *config.Config) { c.Server.Insecure = true; c.Server.Listen = "phivault.example:8080" }, "server.insecure_http"},
		{"no TLS files", func(c *config.Config) { c.Server.TLSKey = "" }, "server.tls_cert/tls_key"},
		{"relative base url", func(c *config.Config) { c.Server.BaseURL = "/fhir" }, "server.base_url"},
		{"base url scheme", func(c *config.Config) { c.Server.BaseURL = "ftp://host/x" }, "server.base_url"},
		{"unknown driver", func(c *config.Config) { c.Storage.Driver = "mysql" }, "storage.driver"},
		{"sqlite without path", func(c *config.Config) { c.Storage.SQLitePath = "" }, "storage.sqlite_path"},
		{"postgres without url", func(c *config.Config) { c.Storage.Driver = "postgres" }, "storage.postgres_url"},
		{"postgres url scheme", func(c *config.Config) {
			c.Storage.Driver = "postgres"
			c.Storage.PostgresURL = "mysql://u:p@h/db"
		}, "storage.postgres_url"},
		{"neither key file nor kms", func(c *config.Config) { c.Keys.KeyFile = "" }, "keys.key_file / keys.kms_uri"},
		{"both key file and kms", func(c *config.Config) { c.Keys.KMSURI = "hcvault://v/transit/keys/k" }, "keys.key_file / keys.kms_uri"},
		{"negative shred retention", func(c *config.Config) { c.Keys.ShredRetentionDays = -1 }, "keys.shred_retention_days"},
		{"shred retention beyond six years", func(c *config.Config) { c.Keys.ShredRetentionDays = 6*366 + 1 }, "keys.shred_retention_days"},
		{"empty log name", func(c *config.Config) { c.Audit.LogName = "" }, "audit.log_name"},
		{"log name with space", func(c *config.Config) { c.Audit.LogName = "a b" }, "audit.log_name"},
		{"log name with newline", func(c *config.Config) { c.Audit.LogName = "a\nb" }, "audit.log_name"},
		{"log name with plus", func(c *config.Config) { c.Audit.LogName = "a+b" }, "audit.log_name"},
		{"obsolete signing key file", func(c *config.Config) { c.Audit.SigningKey = "keys/log-signer.key" }, "audit.signing_key"},
		{"body limit too small", func(c *config.Config) { c.Limits.MaxBodyBytes = 1023 }, "limits.max_body_bytes"},
		{"body limit too large", func(c *config.Config) { c.Limits.MaxBodyBytes = 1<<30 + 1 }, "limits.max_body_bytes"},
		{"no bundle entries", func(c *config.Config) { c.Limits.MaxBundleEntries = 0 }, "limits.max_bundle_entries"},
		{"no connections", func(c *config.Config) { c.Limits.MaxConnections = 0 }, "limits.max_connections"},
		{"more per address than in all", func(c *config.Config) { c.Limits.MaxConnectionsPerAddress = c.Limits.MaxConnections + 1 }, "limits.max_connections_per_address"},
		{"negative body pace", func(c *config.Config) { c.Limits.MinBodyRate = -1 }, "limits.min_body_bytes_per_second"},
		{"no attempt budget", func(c *config.Config) { c.Limits.AttemptBurst = 0 }, "limits.unauthenticated_event_burst"},
		{"header timeout off", func(c *config.Config) { c.Timeouts.ReadHeader = 0 }, "timeouts.read_header"},
		{"write before handler", func(c *config.Config) { c.Timeouts.Write = c.Timeouts.Handler - 1 }, "timeouts.write"},
		{"lock timeout off", func(c *config.Config) { c.Timeouts.Lock = 0 }, "timeouts.lock"},
		{"no log repeats", func(c *config.Config) { c.Logging.Repeats = 0 }, "logging.repeats"},
		{"too many bundle entries", func(c *config.Config) { c.Limits.MaxBundleEntries = 100001 }, "limits.max_bundle_entries"},
		{"unknown patient mfa policy", func(c *config.Config) { c.Auth.PatientMFA = "sometimes" }, "auth.patient_mfa"},
	}
	base := config.Default(t.TempDir())
	if err := base.Validate(); err != nil {
		t.Fatalf("the default configuration is invalid: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default(t.TempDir())
			tt.mutate(&c)
			err := c.Validate()
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("Validate: got %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.option) {
				t.Errorf("error %q does not name %q", err, tt.option)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *config.Config)
	}{
		{"insecure on 127.0.0.1", func(c *config.Config) { c.Server.Insecure = true; c.Server.Listen = "127.0.0.1:8080" }},
		{"patient mfa required", func(c *config.Config) { c.Auth.PatientMFA = config.PatientMFARequired }},
		{"patient mfa optional", func(c *config.Config) { c.Auth.PatientMFA = config.PatientMFAOptional }},
		{"insecure on ::1", func(c *config.Config) { c.Server.Insecure = true; c.Server.Listen = "[::1]:8080" }},
		{"insecure on localhost", func(c *config.Config) { c.Server.Insecure = true; c.Server.Listen = "localhost:8080" }},
		{"insecure needs no TLS files", func(c *config.Config) {
			c.Server.Insecure = true
			c.Server.TLSCert, c.Server.TLSKey = "", ""
		}},
		{"postgres", func(c *config.Config) {
			c.Storage.Driver = "postgres"
			c.Storage.PostgresURL = "postgresql://u@db:5432/phi?sslmode=verify-full"
		}},
		{"kms instead of key file", func(c *config.Config) {
			c.Keys.KeyFile = ""
			c.Keys.KMSURI = "hcvault://vault:8200/transit/keys/phivault"
		}},
		{"limits at bounds", func(c *config.Config) {
			c.Limits.MaxBodyBytes, c.Limits.MaxBundleEntries = 1024, 100000
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default(t.TempDir())
			tt.mutate(&c)
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestLoadResolvesPathsAgainstDataDir(t *testing.T) {
	dir := t.TempDir()
	abs := filepath.Join(t.TempDir(), "elsewhere", "kek.json")
	writeConfig(t, dir, `{"server":{"tls_cert":"tls/a.crt","tls_key":"tls/a.key"},`+
		`"storage":{"sqlite_path":"db/p.db"},"keys":{"key_file":"`+abs+`"},`+
		`"audit":{"verifier_key":"v.pub"}}`)
	c, err := config.Load(dir, env{}.get, config.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, got, want string
	}{
		{"tls_cert", c.Server.TLSCert, filepath.Join(dir, "tls/a.crt")},
		{"tls_key", c.Server.TLSKey, filepath.Join(dir, "tls/a.key")},
		{"sqlite_path", c.Storage.SQLitePath, filepath.Join(dir, "db/p.db")},
		{"absolute key_file kept", c.Keys.KeyFile, abs},
		{"verifier_key", c.Audit.VerifierKey, filepath.Join(dir, "v.pub")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
	// The working directory must play no part.
	t.Chdir(t.TempDir())
	c2, err := config.Load(dir, env{}.get, config.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if c2.Storage.SQLitePath != c.Storage.SQLitePath {
		t.Errorf("sqlite_path depends on the working directory: %q vs %q", c2.Storage.SQLitePath, c.Storage.SQLitePath)
	}
}

func TestStorageLogValueHidesPostgresURL(t *testing.T) {
	const password = "s3cr3t-Pa55w0rd"
	st := config.Storage{Driver: "postgres", PostgresURL: "postgres://phivault:" + password + "@db.internal:5432/phi"}
	var text, js bytes.Buffer
	loggers := []struct {
		name string
		log  *slog.Logger
		out  *bytes.Buffer
	}{
		{"text", slog.New(slog.NewTextHandler(&text, nil)), &text},
		{"json", slog.New(slog.NewJSONHandler(&js, nil)), &js},
	}
	for _, l := range loggers {
		t.Run(l.name, func(t *testing.T) {
			l.log.Info("opening storage", "storage", st)
			c := config.Default(t.TempDir())
			c.Storage = st
			l.log.Info("configuration", slog.Any("storage", c.Storage))
			out := l.out.String()
			for _, leak := range []string{password, "db.internal", "postgres://"} {
				if strings.Contains(out, leak) {
					t.Errorf("log output carries %q: %s", leak, out)
				}
			}
			if !strings.Contains(out, "postgres") {
				t.Errorf("log output lost the driver name: %s", out)
			}
		})
	}
}

// TestLogNameDerivedFromBaseURL: without audit.log_name the checkpoint
// origin is the base URL's host followed by "/audit".
func TestLogNameDerivedFromBaseURL(t *testing.T) {
	tests := []struct{ name, base, want string }{
		{"host and port", "https://FHIR.example.org:8443/x", "fhir.example.org:8443/audit"},
		{"host only", "https://fhir.example.org", "fhir.example.org/audit"},
		{"no base URL", "", config.DefaultLogName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeConfig(t, dir, `{"server":{"base_url":"`+tt.base+`"},"audit":{"log_name":""}}`)
			c, err := config.Load(dir, env{}.get, config.Overrides{})
			if err != nil {
				t.Fatal(err)
			}
			if c.Audit.LogName != tt.want {
				t.Fatalf("log name %q, want %q", c.Audit.LogName, tt.want)
			}
		})
	}
}

// TestDurationOptions: timeouts are Go duration strings in the file; a
// malformed one is refused naming the file, and the values round-trip.
func TestDurationOptions(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, config.FileName), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"timeouts":{"read_header":"2s","lock":"750ms"}}`)
	c, err := config.Load(dir, func(string) string { return "" }, config.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeouts.ReadHeader.D() != 2*time.Second || c.Timeouts.Lock.D() != 750*time.Millisecond || c.Timeouts.Idle.D() != config.DefaultIdleTimeout {
		t.Fatalf("timeouts: %+v", c.Timeouts)
	}
	for _, bad := range []string{`{"timeouts":{"idle":"soon"}}`, `{"timeouts":{"idle":30}}`} {
		write(bad)
		if _, err := config.Load(dir, func(string) string { return "" }, config.Overrides{}); err == nil || !strings.Contains(err.Error(), "duration") {
			t.Fatalf("%s: got %v, want an error about the duration", bad, err)
		}
	}
}

// The Vault token comes from VAULT_TOKEN only, and is never written to
// the configuration file (keys reads no environment itself).
func TestKMSTokenFromEnvOnly(t *testing.T) {
	const token = "s.kms-token-never-written"
	dir := t.TempDir()
	writeConfig(t, dir, `{"keys":{"key_file":""}}`)
	c, err := config.Load(dir, env{config.VaultTokenEnv: token, "PHIVAULT_KMS_URI": "hcvault://vault:8200/transit/keys/pv"}.get, config.Overrides{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Keys.KMSToken() != token {
		t.Fatalf("KMSToken() = %q, want the VAULT_TOKEN value", c.Keys.KMSToken())
	}
	c.DataDir = t.TempDir()
	if err := config.Write(c); err != nil {
		t.Fatalf("Write: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(c.DataDir, config.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), token) {
		t.Fatal("the configuration file holds the Vault token")
	}
	c2, err := config.Load(dir, env{}.get, config.Overrides{KMSURI: "hcvault://vault:8200/transit/keys/pv"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c2.Keys.KMSToken() != "" {
		t.Fatalf("KMSToken() without VAULT_TOKEN = %q, want empty", c2.Keys.KMSToken())
	}
}

// logging.format: file, then PHIVAULT_LOG_FORMAT, then --log-format;
// anything but auto, text and json names the option.
func TestLogFormat(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, `{"logging":{"format":"json"}}`)
	for _, tc := range []struct {
		env  env
		flag string
		want string
	}{
		{env{}, "", "json"},
		{env{"PHIVAULT_LOG_FORMAT": "text"}, "", "text"},
		{env{"PHIVAULT_LOG_FORMAT": "text"}, "auto", "auto"},
	} {
		c, err := config.Load(dir, tc.env.get, config.Overrides{LogFormat: tc.flag})
		if err != nil || c.Logging.Format != tc.want {
			t.Errorf("env %v flag %q: format %q, %v; want %q", tc.env, tc.flag, c.Logging.Format, err, tc.want)
		}
	}
	writeConfig(t, dir, `{"logging":{"format":"xml"}}`)
	if _, err := config.Load(dir, env{}.get, config.Overrides{}); err == nil || !strings.Contains(err.Error(), "logging.format") {
		t.Errorf("format xml: %v", err)
	}
}
