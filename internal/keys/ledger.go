package keys

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"

	"github.com/tink-crypto/tink-go/v2/prf"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// SystemLedger is the HMAC-SHA256 PRF key behind [LedgerKey]: the
// commitments that audit events make to the data they wrote (ADR 0016).
// It has one purpose; the blind-index key is never reused for it.
const SystemLedger ident.Owner = ident.SystemPrefix + "ledger"

// CommitSize is the length of a ledger commitment: a full HMAC-SHA256
// output. The commitments are checked by whoever holds the key; 256 bits
// keep even an attacker who holds the key (and could choose what is
// written) from finding two contents with one commitment (2^128 work).
const CommitSize = 32

// Domains of the ledger commitments (the first field of every input), so
// a commitment of one kind never verifies as another.
const (
	domainLedgerVersion = "phivault/ledger/version/v1" // + type, id, version, owner, deleted, time, body
	domainLedgerIndex   = "phivault/ledger/index/v1"   // + type, id, sorted rows
	domainLedgerCheck   = "phivault/ledger/check/v1"   // the key check value
)

// LedgerKey computes ledger commitments: keyed hashes (HMAC-SHA256 PRF
// through Tink) of what a write stored, which the audit event of the
// write carries. Keyed, because the events are readable by auditors and
// a plain hash of a resource body would let them confirm guesses of its
// content. It is immutable and safe for concurrent use; get one from
// [Keyring.LoadLedgerKey].
type LedgerKey struct {
	_   noCompare
	prf *prf.Set
}

// LoadLedgerKey unwraps the ledger key rec ([SystemLedger], made by
// [Keyring.NewSystemKey]). Errors wrap [ErrShredded] or [ErrDecrypt].
func (k *Keyring) LoadLedgerKey(rec storage.KeyRecord) (*LedgerKey, error) {
	if rec.Owner != SystemLedger {
		return nil, fmt.Errorf("loading ledger key: record owned by %q, want %q", rec.Owner, SystemLedger)
	}
	if err := checkLive(rec); err != nil {
		return nil, fmt.Errorf("loading ledger key: %w", err)
	}
	h, err := k.kek.Load().unwrap(rec.Wrapped, rec.Owner)
	if err != nil {
		return nil, fmt.Errorf("loading ledger key: %w", err)
	}
	if err := checkHMACSHA256PRF(h); err != nil {
		return nil, fmt.Errorf("loading ledger key: %w", err)
	}
	ps, err := prf.NewPRFSet(h)
	if err != nil {
		return nil, fmt.Errorf("loading ledger key: %w", err)
	}
	l := &LedgerKey{prf: ps}
	if _, err := l.mac(encodeAD(domainLedgerCheck)); err != nil {
		return nil, fmt.Errorf("loading ledger key: %w", err)
	}
	return l, nil
}

// mac is the PRF of input, CommitSize bytes. After LoadLedgerKey
// computed one, it cannot fail: HMAC has no other failure mode.
func (l *LedgerKey) mac(input []byte) ([]byte, error) {
	return l.prf.ComputePrimaryPRF(input, CommitSize)
}

func (l *LedgerKey) must(input []byte) []byte {
	out, err := l.mac(input)
	if err != nil {
		// LoadLedgerKey computed a PRF of the same key and length.
		panic("keys: ledger PRF failed after a successful load: " + err.Error())
	}
	return out
}

// Check returns the key check value: the commitment of a fixed input.
// The ledger's first event records it, so a verifier tells a replaced
// ledger key (every commitment would differ) from changed data.
func (l *LedgerKey) Check() []byte { return l.must(encodeAD(domainLedgerCheck)) }

// Version returns the commitment to one stored version: its type, id,
// version, owner, deletion flag and time, and its plaintext body (nil
// for a delete marker). The ciphertext is not committed: DEK rotation
// re-seals it in place, and the AEAD already binds it to the same
// fields; a version's plaintext never changes.
func (l *LedgerKey) Version(v storage.Version, plaintext []byte) []byte {
	b := encodeAD(domainLedgerVersion, v.Type, v.ID)
	b = binary.BigEndian.AppendUint64(b, uint64(v.Version))
	b = appendField(b, string(v.Owner))
	if v.Deleted {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(v.LastUpdated.UnixMicro()))
	b = binary.BigEndian.AppendUint64(b, uint64(len(plaintext)))
	b = append(b, plaintext...)
	return l.must(b)
}

// Index returns the commitment to the index rows of typ/id: the multiset
// of rows (order does not matter; duplicates count). rows is not
// modified.
func (l *LedgerKey) Index(typ, id string, rows []storage.IndexRow) []byte {
	// Encode every row into one buffer, then sort the rows' spans.
	n := 0
	for _, r := range rows {
		n += 4 + len(r.Param) + 1 + 16 + 4 + len(r.Hash)
	}
	buf := make([]byte, 0, n)
	spans := make([][2]int, len(rows))
	for i, r := range rows {
		start := len(buf)
		buf = appendField(buf, r.Param)
		if r.IsDate {
			buf = append(buf, 1)
			buf = binary.BigEndian.AppendUint64(buf, uint64(r.Lo))
			buf = binary.BigEndian.AppendUint64(buf, uint64(r.Hi))
		} else {
			buf = append(buf, 0)
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(r.Hash)))
			buf = append(buf, r.Hash...)
		}
		spans[i] = [2]int{start, len(buf)}
	}
	slices.SortFunc(spans, func(a, b [2]int) int { return bytes.Compare(buf[a[0]:a[1]], buf[b[0]:b[1]]) })
	b := encodeAD(domainLedgerIndex, typ, id)
	b = slices.Grow(b, 8+len(buf))
	b = binary.BigEndian.AppendUint64(b, uint64(len(rows)))
	for _, sp := range spans {
		b = append(b, buf[sp[0]:sp[1]]...)
	}
	return l.must(b)
}

// String implements [fmt.Stringer] without key material.
func (l *LedgerKey) String() string { return "keys.LedgerKey{}" }

// GoString keeps %#v from printing fields.
func (l *LedgerKey) GoString() string { return l.String() }

// LogValue implements [slog.LogValuer] without key material.
func (l *LedgerKey) LogValue() slog.Value { return slog.StringValue(l.String()) }
