package notify_test

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/monitor/notify"
	"github.com/phivault/phivault/internal/tlsca"
)

// inbox is an in-process SMTP server (github.com/emersion/go-smtp)
// that keeps what it received.
type inbox struct {
	mu       sync.Mutex
	msgs     []mail
	authUser string
	addr     string
}

type mail struct {
	from string
	to   []string
	data string
	tls  bool
}

type session struct {
	ib   *inbox
	conn *smtp.Conn
	cur  mail
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "pv" || pass != "s3cret" {
			return errors.New("bad credentials")
		}
		s.ib.mu.Lock()
		s.ib.authUser = user
		s.ib.mu.Unlock()
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error { s.cur.from = from; return nil }
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.to = append(s.cur.to, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = string(b)
	_, s.cur.tls = s.conn.TLSConnectionState()
	s.ib.mu.Lock()
	s.ib.msgs = append(s.ib.msgs, s.cur)
	s.ib.mu.Unlock()
	return nil
}
func (s *session) Reset()        { s.cur = mail{} }
func (s *session) Logout() error { return nil }

// serve starts an SMTP server on a loopback port, with STARTTLS when
// cert is not nil.
func serve(t *testing.T, cert *tls.Certificate) *inbox {
	t.Helper()
	ib := &inbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{ib: ib, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.AllowInsecureAuth = cert == nil
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ib.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ib
}

func (ib *inbox) received() []mail {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	return append([]mail(nil), ib.msgs...)
}

// localCA makes a CA and a localhost certificate with internal/tlsca.
func localCA(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	dir := t.TempDir()
	f := tlsca.Files{CACert: filepath.Join(dir, "ca.pem"), ServerCert: filepath.Join(dir, "srv.pem"), ServerKey: filepath.Join(dir, "srv.key")}
	if _, err := tlsca.Create(f, time.Now()); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(f.ServerCert, f.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	return cert, f.CACert
}

func link(id string) string { return "https://phivault.example/admin/alerts/" + id }

var alerts = []notify.Alert{{ID: "al-1", Category: "family", Severity: "high", Score: 0.93}}

func TestMailOverSTARTTLS(t *testing.T) {
	cert, ca := localCA(t)
	ib := serve(t, &cert)
	c := config.SMTP{Address: ib.addr, From: "phivault@example.org", To: []string{"privacy@example.org", "ciso@example.org"}, CAFile: ca}
	m, err := notify.NewMailer(c, link)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(t.Context(), alerts); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := ib.received()
	if len(got) != 1 {
		t.Fatalf("%d messages received, want 1", len(got))
	}
	msg := got[0]
	if !msg.tls || msg.from != c.From || strings.Join(msg.to, ",") != "privacy@example.org,ciso@example.org" {
		t.Errorf("received from %q to %v over TLS %v", msg.from, msg.to, msg.tls)
	}
	for _, want := range []string{"a high-severity privacy alert needs review", "A high-severity privacy alert needs review.", link("al-1"), "family"} {
		if !strings.Contains(msg.data, want) {
			t.Errorf("message lacks %q:\n%s", want, msg.data)
		}
	}
}

func TestMailAuthenticates(t *testing.T) {
	cert, ca := localCA(t)
	ib := serve(t, &cert)
	c := &config.SMTP{Address: ib.addr, From: "phivault@example.org", To: []string{"privacy@example.org"}, CAFile: ca, Username: "pv"}
	setPassword(t, c, "s3cret")
	m, err := notify.NewMailer(*c, link)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(t.Context(), alerts); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if ib.authUser != "pv" || len(ib.received()) != 1 {
		t.Errorf("authenticated as %q, %d messages", ib.authUser, len(ib.received()))
	}
	setPassword(t, c, "wrong")
	m, _ = notify.NewMailer(*c, link)
	if err := m.Send(t.Context(), alerts); err == nil || strings.Contains(err.Error(), "wrong") {
		t.Errorf("a wrong password: %v (it must fail and not echo the password)", err)
	}
}

// A server that offers no STARTTLS gets no mail unless plaintext was
// allowed for a loopback relay; a certificate that does not verify
// gets none either.
func TestMailRefusesPlaintextAndBadCertificates(t *testing.T) {
	plain := serve(t, nil)
	c := config.SMTP{Address: plain.addr, From: "phivault@example.org", To: []string{"privacy@example.org"}}
	m, _ := notify.NewMailer(c, link)
	if err := m.Send(t.Context(), alerts); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("plaintext without allow_plaintext: %v", err)
	}
	if n := len(plain.received()); n != 0 {
		t.Fatalf("%d messages sent in the clear", n)
	}
	c.AllowPlaintext = true
	m, _ = notify.NewMailer(c, link)
	if err := m.Send(t.Context(), alerts); err != nil {
		t.Fatalf("plaintext to a loopback relay, allowed: %v", err)
	}
	if n := len(plain.received()); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}

	cert, _ := localCA(t)
	_, otherCA := localCA(t)
	ib := serve(t, &cert)
	m, _ = notify.NewMailer(config.SMTP{Address: ib.addr, From: "phivault@example.org", To: []string{"privacy@example.org"}, CAFile: otherCA}, link)
	if err := m.Send(t.Context(), alerts); err == nil {
		t.Error("a certificate from an unknown CA was accepted")
	}
	if n := len(ib.received()); n != 0 {
		t.Errorf("%d messages sent to an unverified server", n)
	}
}

func TestMessageHoldsNoDetail(t *testing.T) {
	m, _ := notify.NewMailer(config.SMTP{Address: "127.0.0.1:25", From: "a@example.org", To: []string{"b@example.org"}}, link)
	msg := string(m.Message([]notify.Alert{{ID: "x1", Category: "self\r\nBcc: evil@example.org", Severity: "high", Score: 1}, {ID: "x2", Category: "vip", Severity: "high"}}))
	if strings.Contains(msg, "Bcc:") || strings.Count(msg, "\r\n- ") != 2 {
		t.Errorf("a category injected a header:\n%s", msg)
	}
	if !strings.Contains(msg, "2 high-severity privacy alerts need review") {
		t.Errorf("subject and body of a batch:\n%s", msg)
	}
}

func setPassword(t *testing.T, c *config.SMTP, p string) {
	t.Helper()
	*c = c.WithPassword(p)
}
