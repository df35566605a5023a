package keys

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"

	"github.com/tink-crypto/tink-go/v2/prf"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// SystemAuthRows is the HMAC-SHA256 PRF key behind [AuthRowKey]: it
// authenticates the database rows that grant access (ADR 0022). It has
// one purpose; the blind-index and ledger keys are never reused for it.
const SystemAuthRows ident.Owner = ident.SystemPrefix + "auth-rows"

// AuthMACSize is the length of a row MAC and of a keyed lookup hash: a
// full HMAC-SHA256 output.
const AuthMACSize = 32

// Labels of the two subkeys derived from the auth-rows key, and the
// domains of their inputs. The MAC subkey and the lookup subkey are
// distinct keys: a lookup hash never verifies as a row MAC.
const (
	labelAuthRowMAC    = "phivault/auth-rows/subkey/mac/v1"
	labelAuthRowLookup = "phivault/auth-rows/subkey/lookup/v1"
	domainAuthRowMAC   = "phivault/auth-rows/mac/v1"    // + table, primary key, fields
	domainAuthLookup   = "phivault/auth-rows/lookup/v1" // + kind, secret
)

// AuthRowKey authenticates rows that grant access (API tokens, users,
// sessions, SMART clients and tokens) and hashes their secrets for
// lookup. Both are HMAC-SHA256 (crypto/hmac) under two subkeys that the
// auth-rows PRF key derives from fixed labels (a PRF used as a KDF, NIST
// SP 800-108). Whoever can write the database but does not hold the KEK
// can compute neither. It is immutable and safe for concurrent use; get
// one from [Keyring.LoadAuthRowKey].
type AuthRowKey struct {
	_      noCompare
	mac    []byte
	lookup []byte
}

// LoadAuthRowKey unwraps the auth-rows key rec ([SystemAuthRows], made
// by [Keyring.NewSystemKey]) and derives its subkeys. Errors wrap
// [ErrShredded] or [ErrDecrypt].
func (k *Keyring) LoadAuthRowKey(rec storage.KeyRecord) (*AuthRowKey, error) {
	if rec.Owner != SystemAuthRows {
		return nil, fmt.Errorf("loading auth-rows key: record owned by %q, want %q", rec.Owner, SystemAuthRows)
	}
	if err := checkLive(rec); err != nil {
		return nil, fmt.Errorf("loading auth-rows key: %w", err)
	}
	h, err := k.kek.Load().unwrap(rec.Wrapped, rec.Owner)
	if err != nil {
		return nil, fmt.Errorf("loading auth-rows key: %w", err)
	}
	if err := checkHMACSHA256PRF(h); err != nil {
		return nil, fmt.Errorf("loading auth-rows key: %w", err)
	}
	ps, err := prf.NewPRFSet(h)
	if err != nil {
		return nil, fmt.Errorf("loading auth-rows key: %w", err)
	}
	mk, err := ps.ComputePrimaryPRF(encodeAD(labelAuthRowMAC), AuthMACSize)
	if err != nil {
		return nil, fmt.Errorf("loading auth-rows key: %w", err)
	}
	lk, err := ps.ComputePrimaryPRF(encodeAD(labelAuthRowLookup), AuthMACSize)
	if err != nil {
		return nil, fmt.Errorf("loading auth-rows key: %w", err)
	}
	return &AuthRowKey{mac: mk, lookup: lk}, nil
}

// MAC returns the MAC of one row: its table, its primary key and its
// security-relevant columns in a fixed order, each length-prefixed, so
// a MAC moved to another row or table, or columns shifted between
// fields, does not verify.
func (a *AuthRowKey) MAC(table, id string, fields ...[]byte) []byte {
	h := hmac.New(sha256.New, a.mac)
	h.Write(encodeAD(domainAuthRowMAC, table, id))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(fields)))
	h.Write(n[:])
	for _, f := range fields {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write(f)
	}
	return h.Sum(nil)
}

// Verify reports whether mac is the MAC of the row, in constant time.
// A missing MAC (nil) never verifies.
func (a *AuthRowKey) Verify(mac []byte, table, id string, fields ...[]byte) bool {
	if len(mac) != AuthMACSize {
		return false
	}
	return hmac.Equal(mac, a.MAC(table, id, fields...))
}

// LookupHash is the stored lookup form of a bearer secret of the given
// kind ("api-token", "session", ...): HMAC-SHA256 under the lookup
// subkey. Without the key nobody can compute the hash of a secret they
// chose, so an inserted row cannot be made to match one.
func (a *AuthRowKey) LookupHash(kind, secret string) []byte {
	h := hmac.New(sha256.New, a.lookup)
	h.Write(encodeAD(domainAuthLookup, kind, secret))
	return h.Sum(nil)
}

// CheckValue identifies the key without revealing it: the MAC of a
// fixed label that names no table. Kept outside the database (ADR 0022),
// it tells a process that the database's auth-rows key was deleted or
// replaced since, which would otherwise re-bless every row.
func (a *AuthRowKey) CheckValue() []byte {
	return a.MAC("phivault/auth-rows/check-value", "")
}

// IsCheckValue reports whether v is this key's [AuthRowKey.CheckValue],
// in constant time.
func (a *AuthRowKey) IsCheckValue(v []byte) bool {
	return hmac.Equal(v, a.CheckValue())
}

// String implements [fmt.Stringer] without key material.
func (a *AuthRowKey) String() string { return "keys.AuthRowKey{}" }

// GoString keeps %#v from printing fields.
func (a *AuthRowKey) GoString() string { return a.String() }

// LogValue implements [slog.LogValuer] without key material.
func (a *AuthRowKey) LogValue() slog.Value { return slog.StringValue(a.String()) }
