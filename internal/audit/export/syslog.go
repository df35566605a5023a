package export

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/phivault/phivault/internal/audit"
)

// Syslog facility and severities (RFC 5424 §6.2.1). Facility 13 is "log
// audit".
const (
	facilityLogAudit = 13
	severityError    = 3
	severityNotice   = 5
	severityInfo     = 6
)

// SyslogOptions configure a [SyslogSink].
type SyslogOptions struct {
	Address  string      // host:port of the collector (6514 is the RFC 5425 port)
	TLS      *tls.Config // required: RootCAs and ServerName as the collector needs; a client certificate for mutual TLS
	Hostname string      // HOSTNAME field; "" = os.Hostname
	Timeout  time.Duration
}

// SyslogSink sends each record as one RFC 5424 message over TLS, framed
// by octet counting (RFC 5425 §4.3). The MSG part is the record's JSON;
// MSGID is the action; the severity is informational for a success,
// notice for a denial and error for an error.
//
// Syslog has no acknowledgement: Send succeeds once the bytes are
// written to the connection. A connection that breaks after that can
// lose the batch in flight; where that matters, use the webhook (which
// is acknowledged) or the file sink.
type SyslogSink struct {
	name string
	opt  SyslogOptions
	conn *tls.Conn
}

// NewSyslog returns a sink that connects on the first Send.
func NewSyslog(name string, opt SyslogOptions) (*SyslogSink, error) {
	if opt.TLS == nil {
		return nil, fmt.Errorf("export %s: syslog needs TLS (RFC 5425)", name)
	}
	if _, _, err := net.SplitHostPort(opt.Address); err != nil {
		return nil, fmt.Errorf("export %s: address %q: %w", name, opt.Address, err)
	}
	if opt.Hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "-"
		}
		opt.Hostname = h
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	opt.TLS = opt.TLS.Clone()
	if opt.TLS.MinVersion < tls.VersionTLS12 {
		opt.TLS.MinVersion = tls.VersionTLS12
	}
	return &SyslogSink{name: name, opt: opt}, nil
}

// Name implements [Sink].
func (s *SyslogSink) Name() string { return s.name }

// Message formats r as an RFC 5424 message (without framing).
func (s *SyslogSink) Message(r Record) (string, error) {
	line, err := r.MarshalLine()
	if err != nil {
		return "", err
	}
	sev := severityInfo
	switch r.Outcome {
	case audit.OutcomeDenied:
		sev = severityNotice
	case audit.OutcomeError:
		sev = severityError
	}
	m := &rfc5424.SyslogMessage{}
	m.SetPriority(uint8(facilityLogAudit*8 + sev))
	m.SetVersion(1)
	m.SetTimestamp(r.Time.UTC().Format(time.RFC3339Nano))
	m.SetHostname(s.opt.Hostname)
	m.SetAppname("phivault")
	m.SetProcID(strconv.Itoa(os.Getpid()))
	if r.Action != "" {
		m.SetMsgID(string(r.Action))
	}
	m.SetMessage(string(line))
	out, err := m.String()
	if err != nil {
		return "", fmt.Errorf("export %s: formatting leaf %d: %w", s.name, r.Index, err)
	}
	return out, nil
}

// Send implements [Sink].
func (s *SyslogSink) Send(ctx context.Context, batch []Record) error {
	var buf []byte
	for _, r := range batch {
		msg, err := s.Message(r)
		if err != nil {
			return err
		}
		buf = strconv.AppendInt(buf, int64(len(msg)), 10)
		buf = append(append(buf, ' '), msg...)
	}
	if s.conn == nil {
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: s.opt.Timeout}, Config: s.opt.TLS}
		c, err := d.DialContext(ctx, "tcp", s.opt.Address)
		if err != nil {
			return fmt.Errorf("export %s: connecting: %w", s.name, err)
		}
		s.conn = c.(*tls.Conn)
	}
	deadline := time.Now().Add(s.opt.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := s.conn.SetWriteDeadline(deadline); err != nil {
		return s.fail(err)
	}
	if _, err := s.conn.Write(buf); err != nil {
		return s.fail(err)
	}
	return nil
}

// fail drops the connection so the next Send reconnects.
func (s *SyslogSink) fail(err error) error {
	cerr := s.conn.Close()
	s.conn = nil
	return errors.Join(fmt.Errorf("export %s: sending: %w", s.name, err), cerr)
}

// Close implements [Sink].
func (s *SyslogSink) Close() error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}
