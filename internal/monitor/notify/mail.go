// Package notify tells the privacy office that a high-severity privacy
// alert needs review (issue 16 item 4, ADR 0047): an email through the
// configured SMTP server. (The SIEM sinks and the webhook receive every
// alert as a "monitor-alert" audit event through the audit export.)
//
// # Security invariants
//
//   - A message carries no PHI, no name, no patient or user id: it says
//     that an alert of a category and severity needs review, and links
//     to the alert in the console, where reading it is authenticated
//     and audited.
//   - Mail leaves over STARTTLS with a verified certificate; a plain
//     connection is allowed only to a loopback relay, and the password
//     (SASL PLAIN) is sent only over TLS or to loopback.
//   - Errors name the server and the step, never a message body.
package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/config"
)

// Alert is what a notification says of an alert: its stored id (for
// the link), category, severity and score. Nothing else is given to a
// notifier, so nothing else can leak.
type Alert struct {
	ID       string
	Category string
	Severity string
	Score    float64
}

// dialTimeout bounds the connection and the whole SMTP exchange: a
// stalled mail server must not hold the monitor.
const dialTimeout = 30 * time.Second

// Mailer sends notifications through an SMTP server. It is safe for
// concurrent use.
type Mailer struct {
	c     config.SMTP
	roots *x509.CertPool // nil: the system's
	link  func(id string) string
	now   func() time.Time
}

// NewMailer returns a mailer for c; link builds the console address of
// an alert. It reads c's CA file now.
func NewMailer(c config.SMTP, link func(id string) string) (*Mailer, error) {
	m := &Mailer{c: c, link: link, now: time.Now}
	if c.CAFile != "" {
		b, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading monitor.smtp.ca_file: %w", err)
		}
		m.roots = x509.NewCertPool()
		if !m.roots.AppendCertsFromPEM(b) {
			return nil, errors.New("monitor.smtp.ca_file holds no PEM certificate")
		}
	}
	return m, nil
}

// Message is the email for as (one message for a batch).
func (m *Mailer) Message(as []Alert) []byte {
	var b strings.Builder
	subject := "phivault: a high-severity privacy alert needs review"
	if len(as) > 1 {
		subject = fmt.Sprintf("phivault: %d high-severity privacy alerts need review", len(as))
	}
	fmt.Fprintf(&b, "From: %s\r\n", m.c.From)
	fmt.Fprintf(&b, "To: %s\r\n", strings.Join(m.c.To, ", "))
	fmt.Fprintf(&b, "Subject: %s\r\n", subject)
	fmt.Fprintf(&b, "Date: %s\r\n", m.now().UTC().Format(time.RFC1123Z))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nAuto-Submitted: auto-generated\r\n\r\n")
	if len(as) == 1 {
		b.WriteString("A high-severity privacy alert needs review.\r\n\r\n")
	} else {
		fmt.Fprintf(&b, "%d high-severity privacy alerts need review.\r\n\r\n", len(as))
	}
	for _, a := range as {
		fmt.Fprintf(&b, "- %s (score %.2f): %s\r\n", safe(a.Category), a.Score, m.link(a.ID))
	}
	b.WriteString("\r\nOpen the link in the staff console to see the evidence; this message holds none.\r\n")
	return []byte(b.String())
}

// safe keeps a category to its expected characters (it is ours, but a
// header or body line must never be injected).
func safe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r == '-' {
			return r
		}
		return -1
	}, s)
}

// Send mails one message about as. It returns an error naming the
// server and the step that failed.
func (m *Mailer) Send(ctx context.Context, as []Alert) error {
	if len(as) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	host, _, err := net.SplitHostPort(m.c.Address)
	if err != nil {
		return fmt.Errorf("notify: smtp address %s: %w", m.c.Address, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.c.Address)
	if err != nil {
		return fmt.Errorf("notify: connecting to %s: %w", m.c.Address, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	cl, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("notify: greeting of %s: %w", m.c.Address, err)
	}
	defer cl.Close()
	step := func(what string, err error) error {
		if err == nil {
			return nil
		}
		return fmt.Errorf("notify: %s with %s: %w", what, m.c.Address, err)
	}
	if err := step("hello", cl.Hello("localhost")); err != nil {
		return err
	}
	tlsOn := false
	if ok, _ := cl.Extension("STARTTLS"); ok {
		// TLS 1.2 at least, the server's name verified (RFC 8314 §3.3).
		if err := step("STARTTLS", cl.StartTLS(&tls.Config{ServerName: host, RootCAs: m.roots, MinVersion: tls.VersionTLS12})); err != nil {
			return err
		}
		tlsOn = true
	} else if !m.c.AllowPlaintext || !m.c.Loopback() {
		return fmt.Errorf("notify: %s does not offer STARTTLS; mail is sent only over TLS (monitor.smtp.allow_plaintext is for a loopback relay)", m.c.Address)
	}
	if m.c.Username != "" {
		if !tlsOn && !m.c.Loopback() {
			return fmt.Errorf("notify: refusing to send the SMTP password to %s without TLS", m.c.Address)
		}
		if err := step("authentication", cl.Auth(plainAuth{user: m.c.Username, pass: m.c.Password(), tlsOn: tlsOn, loopback: m.c.Loopback()})); err != nil {
			return err
		}
	}
	if err := step("MAIL FROM", cl.Mail(m.c.From)); err != nil {
		return err
	}
	for _, to := range m.c.To {
		if err := step("RCPT TO", cl.Rcpt(to)); err != nil {
			return err
		}
	}
	w, err := cl.Data()
	if err := step("DATA", err); err != nil {
		return err
	}
	if _, err := w.Write(m.Message(as)); err != nil {
		return step("writing the message", err)
	}
	if err := step("ending the message", w.Close()); err != nil {
		return err
	}
	return step("QUIT", cl.Quit())
}

// plainAuth is SASL PLAIN (RFC 4616) that may run over a plain
// connection to a loopback relay, which net/smtp's PlainAuth allows only
// for the name "localhost". Send already refuses the other cases.
type plainAuth struct {
	user, pass      string
	tlsOn, loopback bool
}

func (a plainAuth) Start(*smtp.ServerInfo) (string, []byte, error) {
	if !a.tlsOn && !a.loopback {
		return "", nil, errors.New("unencrypted connection")
	}
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.pass), nil
}

func (a plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected server challenge")
	}
	return nil, nil
}
