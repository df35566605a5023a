package audit

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/storage"
)

// Sentinel errors.
var (
	// ErrUnavailable means the event could not be made durable. Callers
	// fail the request with 503 and return no PHI.
	ErrUnavailable = errors.New("audit: log unavailable")

	// ErrEventTooLarge means an event would not fit a log entry
	// (MaxLeafSize): the caller splits it.
	ErrEventTooLarge = errors.New("audit: event too large for a log entry")

	// ErrBadLeaf means a decrypted leaf is shorter than its salt: the
	// body was not sealed by this package. Treat it as tampering.
	ErrBadLeaf = errors.New("audit: malformed leaf")
)

// Sealer encrypts and decrypts event bodies with the log key. It is
// implemented by the keyring.
type Sealer interface {
	SealAudit(context string, plaintext []byte) ([]byte, error)
	OpenAudit(context string, ciphertext []byte) ([]byte, error)
}

// Seal contexts bind sealed bodies to their use and format (associated
// data): v2 bodies hold a leaf (salt || event), v1 bodies (sealed before
// the transparency log) the event alone. A body cannot be opened as the
// other format, so the two are never confused.
const (
	sealContext   = "phivault/audit-event/v2"
	sealContextV1 = "phivault/audit-event/v1"
)

// SaltSize is the length of the random salt that starts every leaf:
// 128 bits, so a leaf hash cannot be matched against guessed events.
const SaltSize = 16

// Log turns events into sealed records. It is safe for concurrent use.
type Log struct {
	sealer Sealer
	rand   io.Reader
}

// LogOption adjusts [NewLog].
type LogOption func(*Log)

// WithRand makes the log draw leaf salts from r instead of crypto/rand
// (tests use a deterministic source; production must not).
func WithRand(r io.Reader) LogOption { return func(l *Log) { l.rand = r } }

// NewLog returns a Log sealing with s.
func NewLog(s Sealer, opts ...LogOption) *Log {
	l := &Log{sealer: s, rand: rand.Reader}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Seal encodes ev into a leaf (a fresh salt and the canonical event
// bytes), encrypts the leaf and returns a record ready to append, with
// the leaf's RFC 6962 hash.
func (l *Log) Seal(ev Event) (storage.AuditRecord, error) {
	b, err := ev.Marshal()
	if err != nil {
		return storage.AuditRecord{}, err
	}
	leaf := make([]byte, SaltSize, SaltSize+len(b))
	if _, err := io.ReadFull(l.rand, leaf); err != nil {
		return storage.AuditRecord{}, fmt.Errorf("sealing audit event: drawing salt: %w", err)
	}
	leaf = append(leaf, b...)
	if len(leaf) > MaxLeafSize {
		// A C2SP entry bundle holds each entry with a 16-bit length: a
		// larger leaf could be logged but never served. Fail closed;
		// callers split what they record (record: one event per 256
		// resources).
		return storage.AuditRecord{}, fmt.Errorf("sealing audit event: %d bytes, limit %d: %w", len(leaf), MaxLeafSize, ErrEventTooLarge)
	}
	ct, err := l.sealer.SealAudit(sealContext, leaf)
	if err != nil {
		return storage.AuditRecord{}, fmt.Errorf("sealing audit event: %w", err)
	}
	h := tlog.RecordHash(leaf)
	return storage.AuditRecord{Time: ev.Time, Body: ct, LeafHash: h[:]}, nil
}

// MaxLeafSize is the largest leaf (salt and event) the log takes: a C2SP
// entry bundle prefixes each entry with a 16-bit length.
const MaxLeafSize = 1<<16 - 1

// Open decrypts a stored record and returns the canonical event bytes
// (without the salt).
func (l *Log) Open(rec storage.AuditRecord) ([]byte, error) {
	leaf, legacy, err := l.OpenLeaf(rec.Body)
	if err != nil {
		return nil, err
	}
	if legacy {
		return leaf, nil
	}
	_, ev, err := SplitLeaf(leaf)
	return ev, err
}

// OpenLeaf decrypts a sealed body and returns the Merkle tree leaf it
// holds. legacy reports a body sealed before the transparency log
// (format v1): its leaf is the event bytes alone, without a salt.
func (l *Log) OpenLeaf(body []byte) (leaf []byte, legacy bool, err error) {
	leaf, err = l.sealer.OpenAudit(sealContext, body)
	if err == nil {
		if len(leaf) < SaltSize {
			return nil, false, fmt.Errorf("opening audit record: %w", ErrBadLeaf)
		}
		return leaf, false, nil
	}
	if b, err1 := l.sealer.OpenAudit(sealContextV1, body); err1 == nil {
		return b, true, nil
	}
	return nil, false, fmt.Errorf("opening audit record: %w", err)
}

// SplitLeaf splits a leaf into its salt and the canonical event bytes.
// It returns ErrBadLeaf for a leaf shorter than SaltSize.
func SplitLeaf(leaf []byte) (salt, event []byte, err error) {
	if len(leaf) < SaltSize {
		return nil, nil, ErrBadLeaf
	}
	return leaf[:SaltSize], leaf[SaltSize:], nil
}

// Appender makes records durable; storage.Store implements it.
type Appender interface {
	AppendAudit(ctx context.Context, recs ...storage.AuditRecord) error
}

// Source reads the stored log: the integrated events in their entry
// bundles and the records not yet integrated; storage.LogReader
// implements it.
type Source interface {
	ScanBundles(ctx context.Context, from, to int64, fn func(storage.Bundle) error) error
	ScanPending(ctx context.Context, fn func(storage.LogLeaf) error) error
}

// errStopEvents ends a bundle scan of Events at a gap.
var errStopEvents = errors.New("stop")

// Events opens and decodes every stored event: the integrated ones in
// leaf order, then the pending ones in sequence order. An integrator
// may run meanwhile: Events rereads until the bundles did not grow
// while it read the pending records, so each event is returned once. It
// returns an error naming the first bundle or record that does not open
// (a wrong log key, or tampering). It reads the whole log: it is for
// tests and tools, not for serving.
func (l *Log) Events(ctx context.Context, s Source) ([]Event, error) {
	var out []Event
	decode := func(where string, b []byte) error {
		var ev Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return fmt.Errorf("decoding %s: %w", where, err)
		}
		out = append(out, ev)
		return nil
	}
	var size int64 // leaves read from bundles
	for {
		err := s.ScanBundles(ctx, size/BundleWidth, 1<<62, func(b storage.Bundle) error {
			if b.N*BundleWidth > size {
				// The bundle before grew between two pages of the scan
				// (or is missing): stop; the loop below rereads.
				return errStopEvents
			}
			leaves, v1, err := l.OpenBundle(b.N, b.Width, b.Sealed)
			if err != nil {
				return err
			}
			for i := size - b.N*BundleWidth; i < int64(len(leaves)); i++ {
				_, ev, err := LeafEvent(leaves[i], v1 != nil && v1[i])
				if err != nil {
					return fmt.Errorf("leaf %d: %w", size, err)
				}
				if err := decode(fmt.Sprintf("leaf %d", size), ev); err != nil {
					return err
				}
				size++
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopEvents) {
			return nil, err
		}
		n := len(out)
		err = s.ScanPending(ctx, func(lf storage.LogLeaf) error {
			b, err := l.Open(storage.AuditRecord{Body: lf.Body})
			if err != nil {
				return fmt.Errorf("audit record %d: %w", lf.Seq, err)
			}
			return decode(fmt.Sprintf("audit record %d", lf.Seq), b)
		})
		if err != nil {
			return nil, err
		}
		grew, gap := false, false
		err = s.ScanBundles(ctx, size/BundleWidth, 1<<62, func(b storage.Bundle) error {
			switch {
			case b.N*BundleWidth > size:
				gap = true
			case b.N*BundleWidth+int64(b.Width) > size:
				grew = true
			default:
				return nil
			}
			return errStopEvents
		})
		if err != nil && !errors.Is(err, errStopEvents) {
			return nil, err
		}
		if gap {
			return nil, fmt.Errorf("leaf %d: entry bundle %d is missing", size, size/BundleWidth)
		}
		if !grew {
			return out, nil
		}
		out = out[:n] // integrated meanwhile: read the new leaves, then pending again
	}
}
