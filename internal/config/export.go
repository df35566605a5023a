package config

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
)

// Sink types of the "export" section.
const (
	SinkJSONL   = "jsonl"
	SinkSyslog  = "syslog"
	SinkWebhook = "webhook"
)

// sinkName is the form of a sink's name: it keys the export cursor and
// the secret's environment variable.
var sinkName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// ExportSink is one entry of the "export" list: a SIEM destination for
// the audit log (package export documents the formats). Relative paths
// are resolved against the data directory.
//
// A webhook's signing secret is never read from this file: it comes from
// PHIVAULT_EXPORT_<NAME>_SECRET (NAME upper-cased, "-" as "_") or else
// from secret_file (mode 0600 or stricter).
type ExportSink struct {
	Name string `json:"name"`
	Type string `json:"type"` // jsonl, syslog or webhook

	Path string `json:"path,omitempty"` // jsonl: the file to append to

	Address    string `json:"address,omitempty"`     // syslog: host:port (6514 per RFC 5425)
	CAFile     string `json:"ca_file,omitempty"`     // syslog: PEM roots for the collector; "" = system roots
	ServerName string `json:"server_name,omitempty"` // syslog: name to verify; "" = the address's host
	ClientCert string `json:"client_cert,omitempty"` // syslog: PEM certificate for mutual TLS (optional)
	ClientKey  string `json:"client_key,omitempty"`
	Hostname   string `json:"hostname,omitempty"` // syslog HOSTNAME; "" = this machine's name

	URL        string `json:"url,omitempty"`         // webhook: https URL
	SecretFile string `json:"secret_file,omitempty"` // webhook: file holding the whsec_ secret

	// Redact names the event fields removed before export (see
	// export.RedactableFields), e.g. ["agent.address", "patients"].
	Redact []string `json:"redact,omitempty"`

	secret string // webhook secret from the environment or the file; never marshalled
}

// Secret returns the webhook signing secret read at load.
func (s ExportSink) Secret() string { return s.secret }

// SecretEnv is the environment variable that holds a sink's secret.
func SecretEnv(name string) string {
	return "PHIVAULT_EXPORT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_SECRET"
}

func (c *Config) exportEnv(getenv func(string) string) {
	for i := range c.Export {
		c.Export[i].secret = getenv(SecretEnv(c.Export[i].Name))
	}
}

func (c *Config) exportPaths() {
	for i := range c.Export {
		s := &c.Export[i]
		for _, p := range []*string{&s.Path, &s.CAFile, &s.ClientCert, &s.ClientKey, &s.SecretFile} {
			*p = c.Path(*p)
		}
	}
}

// readExportSecrets fills each webhook's secret from its file when the
// environment did not.
func (c *Config) readExportSecrets() error {
	for i := range c.Export {
		s := &c.Export[i]
		if s.Type != SinkWebhook || s.secret != "" || s.SecretFile == "" {
			continue
		}
		opt := fmt.Sprintf("export[%s].secret_file", s.Name)
		f, err := os.Open(s.SecretFile)
		if err != nil {
			return fmt.Errorf("%w: %s: cannot open the file", ErrInvalid, opt)
		}
		st, err := f.Stat()
		if err == nil && st.Mode().Perm()&0o077 != 0 {
			f.Close()
			return fmt.Errorf("%w: %s: mode %04o; the secret file must not be readable by group or others (chmod 600)", ErrInvalid, opt, st.Mode().Perm())
		}
		b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
		f.Close()
		if err != nil || len(b) > maxSecretFile {
			return fmt.Errorf("%w: %s: unreadable or larger than %d bytes", ErrInvalid, opt, maxSecretFile)
		}
		s.secret = strings.TrimSpace(string(b))
	}
	return nil
}

// validateExport checks the "export" section; the error names the sink
// and the option.
func (c Config) validateExport() error {
	seen := map[string]bool{}
	for i, s := range c.Export {
		opt := func(f string) string { return fmt.Sprintf("export[%d].%s", i, f) }
		bad := func(f, why string) error { return fmt.Errorf("%w: %s: %s", ErrInvalid, opt(f), why) }
		if !sinkName.MatchString(s.Name) {
			return bad("name", "required: lower-case letters, digits and '-', starting with a letter, at most 63")
		}
		if seen[s.Name] {
			return bad("name", fmt.Sprintf("%q is used by two sinks", s.Name))
		}
		seen[s.Name] = true
		switch s.Type {
		case SinkJSONL:
			if s.Path == "" {
				return bad("path", "required for a jsonl sink")
			}
		case SinkSyslog:
			if _, _, err := net.SplitHostPort(s.Address); err != nil {
				return bad("address", "required for a syslog sink, as host:port")
			}
			if (s.ClientCert == "") != (s.ClientKey == "") {
				return bad("client_cert/client_key", "give both or neither")
			}
		case SinkWebhook:
			u, err := url.Parse(s.URL)
			if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
				return bad("url", "required for a webhook sink: an https URL without credentials")
			}
			if s.secret == "" {
				return bad("secret_file", "a webhook needs a signing secret: set "+SecretEnv(s.Name)+" or secret_file")
			}
		default:
			return bad("type", `must be "jsonl", "syslog" or "webhook"`)
		}
	}
	return nil
}
