package config

import (
	"fmt"
	"net"
	"net/mail"
	"time"
)

// Monitor configures privacy and intrusion monitoring of phivault's own
// audit log (issue 16, ADR 0047). The zero value is the default: on,
// every DefaultMonitorInterval, no email.
type Monitor struct {
	// OwnLog turns the follower of the own log off with false; absent
	// (nil) or true, it runs (on PostgreSQL in one process of the fleet).
	OwnLog *bool `json:"own_log,omitempty"`
	// Interval is how often the log is read once caught up; 0 means
	// DefaultMonitorInterval. Alerts must appear within a minute of the
	// access, so it is at most MaxMonitorInterval.
	Interval Duration `json:"interval,omitzero"`
	// SMTP sends an email for each high-severity alert; nil: no email.
	// (High-severity alerts reach the SIEM sinks and the webhook of the
	// "export" section as "monitor-alert" audit events in any case.)
	SMTP *SMTP `json:"smtp,omitempty"`
}

// Monitor bounds.
const (
	DefaultMonitorInterval = 15 * time.Second
	MinMonitorInterval     = time.Second
	MaxMonitorInterval     = 45 * time.Second
)

// OwnLogOn reports whether the own log is monitored.
func (m Monitor) OwnLogOn() bool { return m.OwnLog == nil || *m.OwnLog }

// IntervalOrDefault is Interval, or DefaultMonitorInterval when unset.
func (m Monitor) IntervalOrDefault() time.Duration {
	if m.Interval == 0 {
		return DefaultMonitorInterval
	}
	return m.Interval.D()
}

// SMTP is the mail server notifications go through. The message names
// no patient, user or detail: it says a high-severity privacy alert
// needs review and links to the alert in the console.
type SMTP struct {
	Address string   `json:"address"` // host:port of the submission server (587)
	From    string   `json:"from"`
	To      []string `json:"to"`
	// AllowPlaintext sends without STARTTLS; refused unless the server
	// is on a loopback address (a relay on the same host).
	AllowPlaintext bool `json:"allow_plaintext,omitempty"`
	// CAFile holds PEM roots for the server's certificate; "" = system roots.
	CAFile string `json:"ca_file,omitempty"`
	// Username and PasswordFile authenticate (SASL PLAIN, only over
	// TLS or to a loopback address); the password is read from the
	// file (mode 0600 or stricter), never from this file.
	Username     string `json:"username,omitempty"`
	PasswordFile string `json:"password_file,omitempty"`

	password string
}

// Password returns the SMTP password read at load ("" for none).
func (s *SMTP) Password() string { return s.password }

// Loopback reports whether the server's host is a loopback address.
func (s *SMTP) Loopback() bool {
	host, _, err := net.SplitHostPort(s.Address)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *Config) monitorPaths() {
	if s := c.Monitor.SMTP; s != nil {
		s.CAFile, s.PasswordFile = c.Path(s.CAFile), c.Path(s.PasswordFile)
	}
}

// readMonitorSecret reads the SMTP password from its file.
func (c *Config) readMonitorSecret() error {
	s := c.Monitor.SMTP
	if s == nil || s.PasswordFile == "" {
		return nil
	}
	p, err := readSecretFile("monitor.smtp.password_file", s.PasswordFile)
	if err != nil {
		return err
	}
	s.password = p
	return nil
}

// validate checks the "monitor" section; baseURL is server.base_url
// (the link an email carries).
func (m Monitor) validate(baseURL string) error {
	bad := func(opt, why string) error { return fmt.Errorf("%w: monitor.%s: %s", ErrInvalid, opt, why) }
	if m.Interval != 0 && (m.Interval.D() < MinMonitorInterval || m.Interval.D() > MaxMonitorInterval) {
		return bad("interval", fmt.Sprintf("must be between %s and %s (alerts are due within a minute of the access)", MinMonitorInterval, MaxMonitorInterval))
	}
	s := m.SMTP
	if s == nil {
		return nil
	}
	if _, port, err := net.SplitHostPort(s.Address); err != nil || port == "" {
		return bad("smtp.address", "required: host:port of the mail submission server, e.g. mail.example.org:587")
	}
	if _, err := mail.ParseAddress(s.From); err != nil {
		return bad("smtp.from", "required: one email address")
	}
	if len(s.To) == 0 {
		return bad("smtp.to", "required: the privacy office's addresses")
	}
	for _, to := range s.To {
		if _, err := mail.ParseAddress(to); err != nil {
			return bad("smtp.to", "each entry must be one email address")
		}
	}
	if s.AllowPlaintext && !s.Loopback() {
		return bad("smtp.allow_plaintext", "allowed only for a server on a loopback address; mail to another host must use STARTTLS")
	}
	if baseURL == "" {
		return bad("smtp", "needs server.base_url: the email links to the alert in the staff console")
	}
	if (s.Username == "") != (s.PasswordFile == "") {
		return bad("smtp.username", "username and password_file go together")
	}
	return nil
}

// WithPassword returns s with the SMTP password set, for a
// configuration built in code rather than loaded (tests, tools).
func (s SMTP) WithPassword(p string) SMTP {
	s.password = p
	return s
}
