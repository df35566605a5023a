// Package audit records every access to protected health information.
//
// # Durability before the response
//
// A write commits its audit record in the same database transaction as
// the data ([Log.Seal] then storage.Tx.AppendAudit). A read is recorded
// through the [Batcher]: many requests share one transaction and one
// fsync, and each request waits until its batch has committed before any
// PHI leaves the server. If recording fails, the caller fails the request
// (fail closed): [ErrUnavailable] maps to 503.
//
// # Security invariants
//
//   - Events hold references and pseudonymous ids only; never resource
//     content, search values or names.
//   - Event bodies are sealed with the log key, not a patient key, so
//     crypto-shredding a patient keeps the trail.
//   - There is no delete path.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/phivault/phivault/internal/storage"
)

// ErrUnavailable means the event could not be made durable. Callers fail
// the request with 503 and return no PHI.
var ErrUnavailable = errors.New("audit: log unavailable")

// Sealer encrypts and decrypts event bodies with the log key. It is
// implemented by the keyring.
type Sealer interface {
	SealAudit(context string, plaintext []byte) ([]byte, error)
	OpenAudit(context string, ciphertext []byte) ([]byte, error)
}

// sealContext binds sealed bodies to their use (associated data).
const sealContext = "phivault/audit-event/v1"

// Log turns events into sealed records. It is safe for concurrent use.
type Log struct {
	sealer Sealer
}

// NewLog returns a Log sealing with s.
func NewLog(s Sealer) *Log { return &Log{sealer: s} }

// Seal encodes and encrypts ev into a record ready to append.
func (l *Log) Seal(ev Event) (storage.AuditRecord, error) {
	b, err := ev.Marshal()
	if err != nil {
		return storage.AuditRecord{}, err
	}
	ct, err := l.sealer.SealAudit(sealContext, b)
	if err != nil {
		return storage.AuditRecord{}, fmt.Errorf("sealing audit event: %w", err)
	}
	return storage.AuditRecord{Time: ev.Time, Body: ct}, nil
}

// Open decrypts a stored record.
func (l *Log) Open(rec storage.AuditRecord) ([]byte, error) {
	b, err := l.sealer.OpenAudit(sealContext, rec.Body)
	if err != nil {
		return nil, fmt.Errorf("opening audit record: %w", err)
	}
	return b, nil
}

// Appender makes records durable; storage.Store implements it.
type Appender interface {
	AppendAudit(ctx context.Context, recs ...storage.AuditRecord) error
}

// Scanner reads stored audit records in sequence order; storage.Reader
// implements it.
type Scanner interface {
	ScanAudit(ctx context.Context, after int64, fn func(seq int64, rec storage.AuditRecord) error) error
}

// Events opens and decodes every record of s after sequence number after,
// in order. It returns an error wrapping the first record that does not
// open (a wrong log key, or a tampered body).
func (l *Log) Events(ctx context.Context, s Scanner, after int64) ([]Event, error) {
	var out []Event
	err := s.ScanAudit(ctx, after, func(seq int64, rec storage.AuditRecord) error {
		b, err := l.Open(rec)
		if err != nil {
			return fmt.Errorf("audit record %d: %w", seq, err)
		}
		var ev Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return fmt.Errorf("decoding audit record %d: %w", seq, err)
		}
		out = append(out, ev)
		return nil
	})
	return out, err
}
